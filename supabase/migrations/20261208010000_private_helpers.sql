-- Security-definer helpers out of `public`. A hosted project serves every function in
-- `public` through its API, so helpers that read past RLS belong in `private`, which no
-- API exposes. Policies and triggers hold functions by oid, so they follow the move.
alter function public.handle_new_user() set schema private;
alter function public.touch_updated_at() set schema private;
alter function public.owns_conversation(uuid) set schema private;
alter function public.current_app_role() set schema private;

-- Policies run these two as the querying user, who needs the schema (its tables stay
-- closed: no table in `private` is granted to `authenticated`) and these two alone.
-- Every other function in `private` is the service's: nothing runs as PUBLIC there.
-- A function is executable by PUBLIC when it is made, and a schema's default
-- privileges cannot take that away (only the global ones can, for every schema): so a
-- migration that adds a function to `private` revokes it from PUBLIC itself, as the
-- functions below are now (tests/integration/test_rls_matrix.py checks them all).
grant usage on schema private to authenticated;
revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
grant execute on function private.current_app_role(), private.owns_conversation(uuid)
  to authenticated;
alter default privileges in schema private grant execute on functions to service_role;

-- The policies' role check reads the moved helper by name (a SQL body is resolved at
-- call time), so it is defined again over `private`.
create or replace function public.has_role(required public.app_role) returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce(private.current_app_role() >= required, false)
$$;
