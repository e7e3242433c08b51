"""Every write to uploads, by job: `transitions` (the one way a status changes), `intake` (a
document arrives), `delivery` (sending it: enqueue, claim, the server's outcome), `sweeper`
(what beat takes back or sends again), `publication` (what the public site shows), `stuck` (the
stuck flag), `contests` (a contest opens: its expected uploads)."""
