"""Simulated callers: scenarios of personas that call the agent through LiveKit, judged pass or fail.

`suite` reads the YAML scenarios, `impairments` renders a persona's line, `call`
places one call the way the web app opens rooms, `checks` judges a call and
`task` runs a suite as an eval task (`python -m evals simulate`).
"""
