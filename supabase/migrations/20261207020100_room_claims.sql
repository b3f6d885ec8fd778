-- One agent per room. A self-hosted LiveKit server reports no jobs in a room's
-- dispatch state, so the web app (rooms.wait_for_agent) could not tell a dispatch
-- that was dropped (every worker full) from one whose job process was still
-- starting, and dispatched again: under load two or three agents joined one room
-- and answered the caller at once (found by the simulated callers). Now the worker
-- that accepts a room's job claims the room first; another job for a room with a
-- fresh claim is rejected, and the web app dispatches again only a room nobody
-- has claimed (or whose claim went stale: its job died before joining).

alter table private.rooms
  add column claimed_by_job text check (char_length(claimed_by_job) between 1 and 200),
  add column claimed_at timestamptz;
comment on column private.rooms.claimed_by_job is 'The LiveKit job that holds the room''s agent (set by the worker that accepted it).';
grant update (claimed_by_job, claimed_at) on private.rooms to service_role;
