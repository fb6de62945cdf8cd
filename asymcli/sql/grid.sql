-- Figure 4d: Avg. (mean Avg@k over the benchmarks, x 100) per (beta_pos, beta_neg),
-- mean and sample std over seeds. Relations: table2 (table2.sql's output).
SELECT beta_pos, beta_neg, mean, std, n_seeds, step_min, step_max
FROM table2
WHERE method = 'asym' AND benchmark = 'Avg.' AND metric = 'avg@k'
ORDER BY beta_pos, beta_neg
