-- Profiles (one per auth user), app roles, and the SQL helpers every policy uses.

create type public.app_role as enum ('user', 'researcher', 'admin');  -- ordered: user < researcher < admin
comment on type public.app_role is 'Application role; comparisons follow the declared order, so has_role(''researcher'') admits admins too.';

-- Settings are validated by the database (the Python model `workbench.db.models.UserSettings`
-- mirrors this; a unit test keeps them in step).
create function public.valid_user_settings(settings jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(settings) = 'object'
    and (select coalesce(bool_and(key in ('stack', 'voice', 'language', 'ui')), true)
         from jsonb_object_keys(settings) as key)
    and (not settings ? 'stack' or (jsonb_typeof(settings -> 'stack') = 'string'
         and settings ->> 'stack' ~ '^[a-z0-9][a-z0-9_-]{0,63}$'))
    and (not settings ? 'voice' or (jsonb_typeof(settings -> 'voice') = 'string'
         and settings ->> 'voice' ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'))
    and (not settings ? 'language' or (jsonb_typeof(settings -> 'language') = 'string'
         and settings ->> 'language' ~ '^[a-z]{2}(-[A-Z]{2})?$'))
    and (not settings ? 'ui' or (
         jsonb_typeof(settings -> 'ui') = 'object'
         and (select coalesce(bool_and(key in ('theme', 'show_latency', 'show_transcript')), true)
              from jsonb_object_keys(settings -> 'ui') as key)
         and (not settings -> 'ui' ? 'theme' or settings -> 'ui' ->> 'theme' in ('light', 'dark', 'system'))
         and (not settings -> 'ui' ? 'show_latency' or jsonb_typeof(settings -> 'ui' -> 'show_latency') = 'boolean')
         and (not settings -> 'ui' ? 'show_transcript'
              or jsonb_typeof(settings -> 'ui' -> 'show_transcript') = 'boolean')))
$$;
comment on function public.valid_user_settings(jsonb) is 'True if a profile''s settings JSON follows the settings schema (stack, voice, language, ui{theme, show_latency, show_transcript}).';

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  display_name text not null check (char_length(display_name) between 1 and 80),
  avatar_path text check (avatar_path is null or char_length(avatar_path) <= 512),
  role public.app_role not null default 'user',
  settings jsonb not null default '{}' check (public.valid_user_settings(settings)),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.profiles is 'One row per auth user, created by trigger on sign-up. Users edit their own display name, avatar and settings; the role changes only through set_user_role(), by an admin.';
comment on column public.profiles.avatar_path is 'Object key in the avatars bucket, namespaced by the owner''s id.';

alter table public.profiles enable row level security;

-- Column privileges: a user may update these three columns and nothing else,
-- so `role` can never be written from a user session.
revoke all on public.profiles from anon, authenticated;
grant select on public.profiles to authenticated;
grant update (display_name, avatar_path, settings) on public.profiles to authenticated;

-- The caller's role, read past RLS (security definer) so policies on profiles
-- itself can use it without recursion.
create function public.current_app_role() returns public.app_role
language sql stable security definer
set search_path = ''
as $$
  select p.role from public.profiles p where p.id = (select auth.uid())
$$;
comment on function public.current_app_role() is 'Role of the calling user (null for anon or a user without profile).';

create function public.has_role(required public.app_role) returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce(public.current_app_role() >= required, false)
$$;
comment on function public.has_role(public.app_role) is 'True if the caller''s role is at least `required` (admin > researcher > user).';

create policy "users read their own profile, admins every profile" on public.profiles
  for select to authenticated
  using (id = (select auth.uid()) or (select public.has_role('admin')));
create policy "users update their own profile, admins every profile" on public.profiles
  for update to authenticated
  using (id = (select auth.uid()) or (select public.has_role('admin')))
  with check (id = (select auth.uid()) or (select public.has_role('admin')));

create function public.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
create trigger profiles_touch before update on public.profiles
  for each row execute function public.touch_updated_at();

-- Sign-up creates the profile.
create function public.handle_new_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, display_name)
  values (
    new.id,
    left(coalesce(nullif(trim(new.raw_user_meta_data ->> 'display_name'), ''),
                  nullif(split_part(coalesce(new.email, ''), '@', 1), ''),
                  'user'), 80)
  );
  return new;
end
$$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function public.handle_new_user();

-- The one way to change a role: checked in SQL, never trusted from the client.
create function public.set_user_role(target uuid, new_role public.app_role) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  if not (public.has_role('admin') or (select auth.role()) = 'service_role') then
    raise exception 'only an admin may change roles' using errcode = '42501';
  end if;
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
revoke all on function public.set_user_role(uuid, public.app_role) from public, anon;
grant execute on function public.set_user_role(uuid, public.app_role) to authenticated, service_role;
comment on function public.set_user_role(uuid, public.app_role) is 'Change a user''s role; admins (or the service) only; refuses to demote the last admin.';
