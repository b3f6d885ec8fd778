-- Failed-login rate limiting per account and per client, in a schema API roles cannot reach.
-- The Panel server (service code) asks login_allowed() before forwarding a password to
-- Supabase Auth and records each outcome; GoTrue's own per-IP limits still apply behind it.

create schema if not exists private;
revoke all on schema private from public, anon, authenticated;
grant usage on schema private to service_role;

create table private.login_attempts (
  id bigint generated always as identity primary key,
  account_key text not null check (account_key ~ '^[0-9a-f]{64}$'),
  client_key text not null check (char_length(client_key) between 1 and 200),
  succeeded boolean not null,
  attempted_at timestamptz not null default now()
);
comment on table private.login_attempts is 'Login outcomes keyed by sha256 of the lower-cased email (never the email itself) and by client (IP or session key), for rate limiting.';
create index login_attempts_account on private.login_attempts (account_key, attempted_at desc);
create index login_attempts_client on private.login_attempts (client_key, attempted_at desc);
alter table private.login_attempts enable row level security;
-- No policies: only the table owner and service_role (bypassrls) may touch it.
grant select, insert, delete on private.login_attempts to service_role;

create function private.login_allowed(
  account text, client text,
  max_account_failures integer default 5,
  max_client_failures integer default 20,
  window_s integer default 900,
  out allowed boolean, out retry_after_s integer
)
language sql stable
set search_path = ''
as $$
  with account_failures as (
    -- failures since the last success, inside the window
    select attempted_at from private.login_attempts a
    where a.account_key = account and not a.succeeded
      and a.attempted_at > now() - make_interval(secs => window_s)
      and a.attempted_at > coalesce((select max(s.attempted_at) from private.login_attempts s
                                     where s.account_key = account and s.succeeded), '-infinity')
  ), client_failures as (
    select attempted_at from private.login_attempts c
    where c.client_key = client and not c.succeeded
      and c.attempted_at > now() - make_interval(secs => window_s)
  ), blocked as (
    select (select count(*) from account_failures) >= max_account_failures as by_account,
           (select count(*) from client_failures) >= max_client_failures as by_client,
           (select min(attempted_at) from account_failures) as first_account_failure,
           (select min(attempted_at) from client_failures) as first_client_failure
  )
  select not (by_account or by_client),
         case when by_account or by_client then
           greatest(1, ceil(extract(epoch from
             greatest(case when by_account then first_account_failure end,
                      case when by_client then first_client_failure end)
             + make_interval(secs => window_s) - now())))::integer
         else 0 end
  from blocked
$$;
comment on function private.login_allowed(text, text, integer, integer, integer) is 'Whether a password attempt may proceed for this account and client, and if not, how many seconds until it may.';
grant execute on function private.login_allowed(text, text, integer, integer, integer) to service_role;
