-- Trusted tools (the evals and dataset CLIs) act as a named user under RLS. They
-- connect as `authenticator`, which cannot read auth.users (its owner is Supabase
-- Auth), so the e-mail → user lookup they need is this one function, callable by a
-- service_role session only.

create or replace function private.user_by_email(address text)
returns table (id uuid, email text)
language sql stable security definer
set search_path = ''
as $$
  select u.id, u.email::text from auth.users u where lower(u.email) = lower(address)
$$;
comment on function private.user_by_email(text) is 'The Supabase Auth user with this e-mail (case-insensitive); service_role only.';
revoke all on function private.user_by_email(text) from public;
grant execute on function private.user_by_email(text) to service_role;
