-- Rate limits on registration and password-reset requests, decided and recorded
-- in one step (like private.login_begin), so parallel requests cannot slip past.
--
-- Each request counts against several keys (the client's address; for a reset
-- also the hashed e-mail, so no one can bomb an inbox with reset mails). A key
-- limits requests of one action within a window; a refused request records
-- nothing. The same answer whether or not an account exists: nothing leaks.

create table private.request_events (
  id bigint generated always as identity primary key,
  action text not null check (action in ('register', 'reset')),
  key text not null check (char_length(key) <= 200),
  at timestamptz not null default now()
);
comment on table private.request_events is 'Registration and reset requests per limited key, for private.request_take (rows older than a day are pruned as new ones arrive).';
create index request_events_by_key on private.request_events (action, key, at);
alter table private.request_events enable row level security;
-- Only the server (service_role, which bypasses RLS) counts requests.
grant select, insert, delete on private.request_events to service_role;

create function private.request_take(
  action text, keys text[], limits integer[], window_s integer,
  out retry_after_s integer
)
language plpgsql volatile
set search_path = ''
as $$
declare
  i integer;
  used integer;
  oldest timestamptz;
  wait_s double precision := 0;
begin
  if coalesce(array_length(keys, 1), 0) <> coalesce(array_length(limits, 1), 0) then
    raise exception 'one limit per key' using errcode = '22023';
  end if;
  for i in 1 .. coalesce(array_length(keys, 1), 0) loop
    -- Keys in a fixed order (the caller's), one lock each: parallel requests queue.
    perform pg_advisory_xact_lock(hashtext('private.request_take:' || action || ':' || keys[i]));
    select count(*), min(e.at) into used, oldest
      from private.request_events e
      where e.action = request_take.action and e.key = keys[i]
        and e.at > now() - make_interval(secs => window_s);
    if used >= limits[i] then
      wait_s := greatest(wait_s, extract(epoch from oldest + make_interval(secs => window_s) - now()));
    end if;
  end loop;
  if wait_s > 0 then
    retry_after_s := greatest(1, ceil(wait_s))::integer;
    return;
  end if;
  insert into private.request_events (action, key)
    select request_take.action, k from unnest(keys) as k;
  delete from private.request_events e
    where e.action = request_take.action and e.key = any (keys) and e.at < now() - interval '1 day';
  retry_after_s := 0;
end
$$;
comment on function private.request_take(text, text[], integer[], integer) is 'Count a register/reset request against each key, or refuse it (recording nothing) with the seconds to wait.';
revoke all on function private.request_take(text, text[], integer[], integer) from public;
grant execute on function private.request_take(text, text[], integer[], integer) to service_role;
