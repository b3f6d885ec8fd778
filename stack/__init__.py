"""The local embedded stack: Postgres, Supabase Auth, LiveKit, a mail catcher, the agent and the web app.

A developer tool, not part of the library: `./dev up|down|status|logs` runs
`python -m stack ...`; see `stack.services` for what runs and in which order.
It sits above every package (it launches `python -m agent` and `python -m
dashboards`); nothing below imports it.
"""
