"""What training and evaluation share: a policy loaded, sampled and graded.

- :mod:`.models`: loading any HF causal LM, the device and compute dtype, prompt encoding;
- :mod:`.engine`: the rollout engine's settings (one function for the trainer and the evaluation);
- :mod:`.grade`: the config's grader (make_grader); decode a batch of rollouts and grade them;
- :mod:`.curves`: the problem sets of the trainer's greedy test-accuracy curve.

Sits below ``training`` and ``evaluation`` (both import it); imports only ``engines``, ``grading``
and the root (config, errors).
"""
