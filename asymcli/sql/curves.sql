-- Per-step training curves of every run (artifacts.METRICS rows), with the run's identity.
-- $files: list of metrics.parquet paths; relation runs(path, run_id, method, beta_pos,
-- beta_neg, seed) maps each file to its run.
SELECT r.run_id, r.method, r.beta_pos, r.beta_neg, r.seed, m.step,
       m.reward_mean, m.entropy, m.kappa, m.none_solved_frac, m.all_solved_frac,
       m.mixed_frac, m.logprob_gain_correct, m.logprob_gain_correct_tok,
       m.response_len_mean, m.eval_greedy_acc
FROM read_parquet($files, filename = true, union_by_name = true) m
JOIN runs r ON r.path = m.filename
ORDER BY r.run_id, m.step
