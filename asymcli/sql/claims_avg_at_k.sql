-- Avg@k per (run, benchmark) at the reported checkpoint, for `asym claims` (Figure 3,
-- Table 2). Avg@k = mean over problems of (correct samples / samples), as run_scores.sql.
-- $files: list of samples.parquet paths (artifacts.SAMPLES); relation runs(path, run_id)
-- names the run of each file (the run's folder, not the rows' run_id column).
-- $checkpoint: NULL = each run's last evaluated step; else that step.
WITH s AS (
    SELECT r.run_id, m.step, m.benchmark, m.problem_id, m.correct
    FROM read_parquet($files, filename = true, union_by_name = true) m
    JOIN runs r ON r.path = m.filename
),
per_problem AS (
    SELECT run_id, step, benchmark, problem_id,
           avg(correct::DOUBLE) AS acc,
           count(*) AS n
    FROM s
    GROUP BY run_id, step, benchmark, problem_id
),
per_benchmark AS (
    SELECT run_id, step, benchmark,
           avg(acc) AS avg_at_k,
           count(*) AS n_problems,
           min(n) AS k_min,
           max(n) AS k
    FROM per_problem
    GROUP BY run_id, step, benchmark
),
final_step AS (
    SELECT run_id, max(step) AS step FROM per_benchmark GROUP BY run_id
)
SELECT b.run_id, b.step, b.benchmark, b.avg_at_k, b.n_problems, b.k_min, b.k
FROM per_benchmark b JOIN final_step f USING (run_id)
WHERE b.step = CASE WHEN $checkpoint IS NULL THEN f.step ELSE $checkpoint END
ORDER BY b.run_id, b.benchmark
