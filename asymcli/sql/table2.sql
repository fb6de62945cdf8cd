-- Table 2 (long form): for every method row, benchmark (plus 'Avg.') and metric, the mean,
-- sample standard deviation, min and max over seeds of the score x 100 at the reported
-- checkpoint.
-- Relations: scores (run_scores.sql's output).
-- $checkpoint: NULL = each run's final evaluated step; else that step (the base model,
--              evaluated once at step 0, is always reported at its own step).
-- $n_benchmarks: the number of benchmarks in the table; a run's Avg. (mean over the
--              benchmarks, as the paper) is NULL unless it has all of them.
WITH final_step AS (
    SELECT run_id, max(step) AS step FROM scores GROUP BY run_id
),
chosen AS (
    SELECT s.*
    FROM scores s JOIN final_step f USING (run_id)
    WHERE s.step = CASE WHEN $checkpoint IS NULL OR s.method = 'base' THEN f.step
                        ELSE $checkpoint END
),
per_run AS (
    SELECT run_id, method, beta_pos, beta_neg, seed, step, benchmark,
           avg_at_k, pass_at_k, maj_at_k
    FROM chosen
    UNION ALL
    SELECT run_id, method, beta_pos, beta_neg, seed, max(step), 'Avg.',
           CASE WHEN count(*) = $n_benchmarks THEN avg(avg_at_k) END,
           CASE WHEN count(*) = $n_benchmarks THEN avg(pass_at_k) END,
           CASE WHEN count(*) = $n_benchmarks THEN avg(maj_at_k) END
    FROM chosen
    GROUP BY run_id, method, beta_pos, beta_neg, seed
),
long AS (  -- one row per (run, benchmark, metric); NULL scores are kept (shown as '-')
    SELECT *, 'avg@k' AS metric, avg_at_k AS score FROM per_run
    UNION ALL
    SELECT *, 'pass@k', pass_at_k FROM per_run
    UNION ALL
    SELECT *, 'maj@k', maj_at_k FROM per_run
)
SELECT method,
       -- only AsymGRPO rows are told apart by their betas (other methods fix or ignore them)
       CASE WHEN method = 'asym' THEN beta_pos END AS beta_pos,
       CASE WHEN method = 'asym' THEN beta_neg END AS beta_neg,
       benchmark, metric,
       avg(score * 100) AS mean,
       stddev_samp(score * 100) AS std,
       min(score * 100) AS min,
       max(score * 100) AS max,
       count(score) AS n_seeds,
       list(seed ORDER BY seed) AS seeds,
       min(step) AS step_min,
       max(step) AS step_max
FROM long
GROUP BY ALL
