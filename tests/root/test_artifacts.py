import pyarrow as pa
import pytest

from asymcli import artifacts
from asymcli.errors import ArtifactError


def _rows(n=3):
    return [{"k_correct": i, "groups": 10 * i, "group_size": 8} for i in range(n)]


def test_roundtrip_and_metadata(tmp_path):
    p = tmp_path / "a" / "x.parquet"
    meta = artifacts.provenance({"lr": 1e-3}, run_id="r")
    artifacts.write_parquet(p, _rows(), artifacts.BASE_STATS, meta)
    t = artifacts.read_parquet(p, artifacts.BASE_STATS)
    assert t.column("groups").to_pylist() == [0, 10, 20]
    md = artifacts.read_metadata(p)
    assert md["config"] == {"lr": 1e-3} and md["run_id"] == "r"
    assert md["config_hash"] == artifacts.config_hash({"lr": 1e-3})
    assert md["asym_version"]
    assert not [f for f in p.parent.iterdir() if f.name.endswith(".tmp")]


def test_undeclared_column_rejected(tmp_path):
    with pytest.raises(ArtifactError, match="undeclared"):
        artifacts.write_parquet(tmp_path / "x.parquet", [{"k_correct": 1, "bogus": 2}], artifacts.BASE_STATS)
    assert not (tmp_path / "x.parquet").exists()


def test_truncated_file_named(tmp_path):
    p = tmp_path / "x.parquet"
    artifacts.write_parquet(p, _rows(50), artifacts.BASE_STATS)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"x.parquet: truncated or corrupted"):
        artifacts.read_parquet(p, artifacts.BASE_STATS)


def test_missing_and_wrong_type(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        artifacts.read_parquet(tmp_path / "nope.parquet")
    p = tmp_path / "w.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"k_correct": ["a"], "groups": [1], "group_size": [8]}), p)
    with pytest.raises(ArtifactError, match="column 'k_correct' has type string"):
        artifacts.read_parquet(p, artifacts.BASE_STATS)
    pq.write_table(pa.table({"groups": [1]}), p)
    with pytest.raises(ArtifactError, match="missing column 'k_correct'"):
        artifacts.read_parquet(p, artifacts.BASE_STATS)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "x.txt"
    artifacts.write_text(p, "old")
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(p) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["x.txt"]


def test_metrics_written_before_the_eval_columns_still_read(tmp_path):
    """METRICS columns added later (eval_bench, eval_s) may be absent from an older file:
    it reads back with them null, and the aggregate's schema check accepts it."""
    from asymcli.analysis.aggregate import check_files

    old = pa.schema([f for f in artifacts.METRICS if not artifacts.is_added(f)])
    row = {n: (0 if n == "step" else ([] if n.endswith("hist") else 0.5)) for n in old.names}
    path = artifacts.write_parquet(tmp_path / "metrics.parquet", [row], old)
    table = artifacts.read_parquet(path, artifacts.METRICS)
    assert table.column_names == artifacts.METRICS.names
    assert table.column("eval_bench").to_pylist() == [None] and table.column("eval_s").to_pylist() == [None]
    assert check_files([path], artifacts.METRICS) == [str(path)]
    missing = pa.schema([f for f in old if f.name != "entropy"])
    bad = artifacts.write_parquet(tmp_path / "bad.parquet", [{k: v for k, v in row.items() if k != "entropy"}],
                                  missing)
    with pytest.raises(artifacts.ArtifactError, match="missing column 'entropy'"):
        artifacts.read_parquet(bad, artifacts.METRICS)


def test_atomic_folder_replaces_whole_and_leaves_nothing_beside(tmp_path):
    folder = tmp_path / "out" / "model"
    with artifacts.atomic_folder(folder) as tmp:
        assert tmp.parent == folder.parent and not folder.exists()
        (tmp / "a.txt").write_text("one")
    assert (folder / "a.txt").read_text() == "one"
    with artifacts.atomic_folder(folder) as tmp:
        (tmp / "b.txt").write_text("two")
        assert (folder / "a.txt").exists()  # the old folder stays readable while the new one is written
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt"]
    assert [p.name for p in folder.parent.iterdir()] == ["model"]  # no .tmp / .old sibling left


def test_atomic_folder_failure_keeps_the_old_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with artifacts.atomic_folder(folder) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
