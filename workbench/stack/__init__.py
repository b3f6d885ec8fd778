"""Starting, checking and stopping the local embedded stack.

`workbench stack up|down|status|logs` (or `./dev up` ...) drives it; see
`workbench.stack.services` for what runs and in which order.
"""
