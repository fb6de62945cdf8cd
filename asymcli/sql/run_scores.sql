-- Per (run, checkpoint step, benchmark) scores from SAMPLES rows (artifacts.SAMPLES).
-- $files: list of samples.parquet paths.
--   avg_at_k  = mean over problems of (correct samples / samples)            (Avg@k)
--   pass_at_k = fraction of problems with at least one correct sample       (pass@k, k = samples)
--   maj_at_k  = fraction of problems whose majority extracted answer is correct  (maj@k)
-- Majority vote (as asymcli.algorithm.metrics.maj_at_k): among samples with a non-blank
-- extracted answer (exact strings), the answer with the most votes; ties go to the answer
-- sampled first (lowest sample_idx); its correctness is that of its first occurrence.
-- A problem with no extracted answer at all counts as wrong.
WITH s AS (
    SELECT run_id, method, beta_pos, beta_neg, seed, step, benchmark, problem_id,
           sample_idx, temperature, correct, extracted
    FROM read_parquet($files, union_by_name = true)
),
per_problem AS (
    SELECT run_id, step, benchmark, problem_id,
           count(*) AS n,
           max(temperature) AS temperature,
           avg(correct::DOUBLE) AS acc,
           bool_or(correct) AS solved
    FROM s
    GROUP BY run_id, step, benchmark, problem_id
),
votes AS (
    SELECT run_id, step, benchmark, problem_id, extracted,
           count(*) AS n_votes,
           min(sample_idx) AS first_idx,
           arg_min(correct, sample_idx) AS answer_correct
    FROM s
    WHERE extracted IS NOT NULL AND regexp_matches(extracted, '\S')  -- not blank
    GROUP BY run_id, step, benchmark, problem_id, extracted
),
majority AS (
    SELECT run_id, step, benchmark, problem_id, answer_correct
    FROM votes
    QUALIFY row_number() OVER (
        PARTITION BY run_id, step, benchmark, problem_id
        ORDER BY n_votes DESC, first_idx ASC
    ) = 1
),
ident AS (
    SELECT run_id,
           any_value(method) AS method,
           any_value(beta_pos) AS beta_pos,
           any_value(beta_neg) AS beta_neg,
           any_value(seed) AS seed
    FROM s
    GROUP BY run_id
)
SELECT i.run_id, i.method, i.beta_pos, i.beta_neg, i.seed, p.step, p.benchmark,
       count(*) AS n_problems,
       min(p.n) AS k_min,
       max(p.n) AS k,
       max(p.temperature) AS temperature,
       avg(p.acc) AS avg_at_k,
       avg(p.solved::DOUBLE) AS pass_at_k,
       avg(coalesce(m.answer_correct, false)::DOUBLE) AS maj_at_k
FROM per_problem p
JOIN ident i USING (run_id)
LEFT JOIN majority m USING (run_id, step, benchmark, problem_id)
GROUP BY i.run_id, i.method, i.beta_pos, i.beta_neg, i.seed, p.step, p.benchmark
ORDER BY i.run_id, p.step, p.benchmark
