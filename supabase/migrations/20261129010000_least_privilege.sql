-- Least privilege for the API roles, and role changes that trust the database role.
--
-- 1. Supabase's default privileges granted ALL on new tables to anon and
--    authenticated, and RLS does not govern TRUNCATE, REFERENCES or TRIGGER: a
--    signed-in user could `truncate public.eval_runs cascade`. Those privileges
--    (and bumping sequences) are revoked on every existing public object here and
--    for future ones in supabase/bootstrap/roles.sql.
-- 2. set_user_role took `auth.role()` from the request claims, which an
--    authenticated session controls; it now asks the database which role the
--    session took (`set local role service_role`), and serialises role changes so
--    two admins demoting each other cannot leave none.

do $$
declare
  object record;
begin
  for object in
    select c.oid::regclass as name, c.relkind
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
  loop
    if object.relkind = 'S' then
      execute format('revoke update on sequence %s from anon, authenticated', object.name);
    else
      execute format('revoke truncate, references, trigger on %s from anon, authenticated', object.name);
    end if;
  end loop;
end
$$;

create or replace function public.set_user_role(target uuid, new_role public.app_role) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  -- current_setting('role') is the role the session took with SET ROLE; a security
  -- definer function changes current_user, not that setting, and claims cannot touch it.
  if not (public.has_role('admin') or current_setting('role') = 'service_role') then
    raise exception 'only an admin may change roles' using errcode = '42501';
  end if;
  -- One role change at a time: the count below then sees every committed change.
  perform pg_advisory_xact_lock(hashtext('public.set_user_role'));
  if new_role <> 'admin'
     and (select role from public.profiles where id = target) = 'admin'
     and (select count(*) from public.profiles where role = 'admin') = 1 then
    raise exception 'the last admin cannot be demoted' using errcode = '42501';
  end if;
  update public.profiles set role = new_role where id = target;
  if not found then
    raise exception 'no profile %', target using errcode = 'P0002';
  end if;
end
$$;
comment on function public.set_user_role(uuid, public.app_role) is 'Change a user''s role; admins or a service_role session only (the database role, never a claim); serialised, and refuses to demote the last admin.';
