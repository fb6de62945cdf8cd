-- SAMPLES rows that occur more than once for the same (run, step, benchmark, problem,
-- sample index): a sign of two evaluations concatenated; Avg@k would be silently wrong.
-- $files: list of samples.parquet paths.
SELECT run_id, step, benchmark, problem_id, sample_idx, count(*) AS copies
FROM read_parquet($files, union_by_name = true)
GROUP BY run_id, step, benchmark, problem_id, sample_idx
HAVING count(*) > 1
ORDER BY run_id, step, benchmark, problem_id, sample_idx
LIMIT 1
