-- Training dynamics per Table 2 row, from the curves (curves.sql's output): per run, the mean
-- entropy over the training steps (steps >= 1; step 0 is the evaluation-only row), the entropy
-- of the last step, and the mean training reward over the first and the last $window steps;
-- then mean and sample standard deviation over the row's seeds. NaN values are skipped.
WITH per_run AS (
    SELECT run_id, method, beta_pos, beta_neg, seed,
           max(step) AS last_step,
           avg(entropy) FILTER (WHERE NOT isnan(entropy)) AS ent_mean,
           arg_max(entropy, step) FILTER (WHERE NOT isnan(entropy)) AS ent_final,
           avg(reward_mean) FILTER (WHERE step <= $window AND NOT isnan(reward_mean)) AS reward_first,
           count(*) AS n_steps
    FROM curves
    WHERE step >= 1
    GROUP BY run_id, method, beta_pos, beta_neg, seed
),
with_last AS (
    SELECT p.*,
           (SELECT avg(c.reward_mean) FROM curves c
            WHERE c.run_id = p.run_id AND c.step > p.last_step - $window AND NOT isnan(c.reward_mean)) AS reward_last
    FROM per_run p
)
SELECT method,
       CASE WHEN method = 'asym' THEN beta_pos END AS beta_pos,
       CASE WHEN method = 'asym' THEN beta_neg END AS beta_neg,
       avg(ent_mean) AS entropy_mean,
       stddev_samp(ent_mean) AS entropy_mean_std,
       avg(ent_final) AS entropy_final,
       stddev_samp(ent_final) AS entropy_final_std,
       avg(reward_first) AS reward_first,
       avg(reward_last) AS reward_last,
       count(*) AS n_seeds,
       list(seed ORDER BY seed) AS seeds,
       min(last_step) AS step_min,
       max(last_step) AS step_max
FROM with_last
GROUP BY ALL
