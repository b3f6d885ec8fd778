-- Login rate limiting that cannot be raced and that an attacker cannot turn on the owner.
--
-- Before: login_allowed() checked, then the outcome was recorded after Supabase
-- Auth answered, so parallel wrong passwords all passed the check; and five
-- failures from anywhere locked the account for 15 minutes, so anyone could lock
-- out anyone (the admin included).
-- Now: login_begin() decides and records the attempt in one step, under a lock
-- per account, and an attempt in flight counts as a failure until login_finish()
-- says otherwise. Limits:
--   * per account and client: `max_pair_failures` in the window, then that client
--     waits the window out (an attacker locks out only himself);
--   * per client: `max_client_failures` over all accounts in the window;
--   * per account, from any client: after `free_account_failures`, an exponential
--     backoff (1 s, 2 s, 4 s, ... at most `max_backoff_s`) from the last failure,
--     which slows a distributed guesser and costs the owner at most seconds.

alter table private.login_attempts alter column succeeded drop not null;
comment on column private.login_attempts.succeeded is 'The outcome; null while the attempt is in flight (it counts as a failure until finished).';

create function private.login_begin(
  account text, client text,
  max_pair_failures integer default 5,
  max_client_failures integer default 20,
  free_account_failures integer default 10,
  max_backoff_s integer default 60,
  window_s integer default 900,
  out attempt_id bigint, out retry_after_s integer
)
language plpgsql volatile
set search_path = ''
as $$
declare
  since timestamptz;
  pair_oldest timestamptz;
  pair_count integer;
  account_count integer;
  account_latest timestamptz;
  client_oldest timestamptz;
  client_count integer;
  wait_s double precision := 0;
begin
  -- One decision per account at a time: parallel guesses are each counted.
  perform pg_advisory_xact_lock(hashtext('private.login_begin:' || account));
  select greatest(coalesce(max(a.attempted_at), '-infinity'), now() - make_interval(secs => window_s))
    into since
    from private.login_attempts a
    where a.account_key = account and a.succeeded;
  select count(*) filter (where a.client_key = client),
         min(a.attempted_at) filter (where a.client_key = client),
         count(*), max(a.attempted_at)
    into pair_count, pair_oldest, account_count, account_latest
    from private.login_attempts a
    where a.account_key = account and a.succeeded is not true and a.attempted_at > since;
  select count(*), min(c.attempted_at) into client_count, client_oldest
    from private.login_attempts c
    where c.client_key = client and c.succeeded is not true
      and c.attempted_at > now() - make_interval(secs => window_s);
  if pair_count >= max_pair_failures then
    wait_s := greatest(wait_s, extract(epoch from pair_oldest + make_interval(secs => window_s) - now()));
  end if;
  if client_count >= max_client_failures then
    wait_s := greatest(wait_s, extract(epoch from client_oldest + make_interval(secs => window_s) - now()));
  end if;
  if account_count >= free_account_failures then
    wait_s := greatest(wait_s, extract(epoch from account_latest
      + make_interval(secs => least(max_backoff_s, 2 ^ (account_count - free_account_failures))) - now()));
  end if;
  if wait_s > 0 then
    attempt_id := null;
    retry_after_s := greatest(1, ceil(wait_s))::integer;
    return;
  end if;
  insert into private.login_attempts (account_key, client_key, succeeded)
    values (account, client, null) returning id into attempt_id;
  retry_after_s := 0;
end
$$;
comment on function private.login_begin(text, text, integer, integer, integer, integer, integer) is 'Decide and record a password attempt in one step (per-account lock); null attempt_id and the seconds to wait when it must wait.';
grant execute on function private.login_begin(text, text, integer, integer, integer, integer, integer) to service_role;
grant update (succeeded) on private.login_attempts to service_role;

drop function private.login_allowed(text, text, integer, integer, integer);
