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
