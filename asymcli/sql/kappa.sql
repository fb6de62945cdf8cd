-- kappa-hat (Appendix E, Table 1): mean of the per-step kappa_B over the first $steps
-- training steps of each run (steps 1..$steps; step 0 is the evaluation-only row) (steps without a mixed group, kappa NaN, are skipped), then
-- mean over seeds. Scaled by 1e3 as in Table 1. Relations: curves (curves.sql's output).
WITH per_run AS (
    SELECT run_id, method, beta_pos, beta_neg, seed,
           avg(kappa) FILTER (WHERE NOT isnan(kappa)) AS kappa_hat,
           count(*) FILTER (WHERE NOT isnan(kappa)) AS n_steps
    FROM curves
    WHERE step >= 1 AND step <= $steps
    GROUP BY run_id, method, beta_pos, beta_neg, seed
)
SELECT method,
       CASE WHEN method = 'asym' THEN beta_pos END AS beta_pos,
       CASE WHEN method = 'asym' THEN beta_neg END AS beta_neg,
       avg(kappa_hat * 1000) AS kappa_hat_e3,
       stddev_samp(kappa_hat * 1000) AS std,
       count(kappa_hat) AS n_seeds,
       min(n_steps) AS n_steps
FROM per_run
GROUP BY ALL
ORDER BY method, beta_pos, beta_neg
