"""`pipe ui`: a live web view of the store: runs, steps, changes, approvals and rollbacks."""
