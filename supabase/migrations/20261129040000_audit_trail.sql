-- The audit trail: who signed in and out, started and ended conversations, requested
-- exports, activated prompt versions, started and stopped experiments and changed
-- roles. The database records each as it happens (triggers on the tables the action
-- writes), so no code path can skip an event and no client can forge or alter one.
-- `user_id` is who acted: the signed-in user of the request, or, for what the agent
-- and the web app's own pool write, the user whose conversation or session it is.

alter table public.analytics_events drop constraint analytics_events_kind_check;
alter table public.analytics_events add constraint analytics_events_kind_check check (kind in (
  'login', 'logout', 'page_view', 'conversation_started', 'conversation_ended',
  'settings_changed', 'prompt_activated', 'experiment_started', 'experiment_stopped',
  'export_requested', 'eval_run_started', 'role_changed'));

-- Clients record only what happens in the browser; every audited kind comes from the
-- triggers below, so a user cannot forge one even in their own name.
drop policy "users record their own events" on public.analytics_events;
create policy "users record their own page events" on public.analytics_events
  for insert to authenticated
  with check (user_id = (select auth.uid()) and kind in ('page_view', 'settings_changed'));

-- Sign-ins, sign-outs and role changes are for admins; researchers read the rest.
drop policy "users read their events, researchers all" on public.analytics_events;
create policy "users read their events, researchers usage, admins all" on public.analytics_events
  for select to authenticated
  using (
    user_id = (select auth.uid())
    or (select public.has_role('admin'))
    or ((select public.has_role('researcher'))
        and kind not in ('login', 'logout', 'role_changed'))
  );
create index analytics_events_time on public.analytics_events (occurred_at desc);

create function private.audit(event_kind text, fallback_user uuid, details jsonb) returns void
language sql security definer
set search_path = ''
as $$
  insert into public.analytics_events (user_id, kind, payload)
  values (coalesce(auth.uid(), fallback_user), event_kind, jsonb_strip_nulls(details));
$$;
revoke all on function private.audit(text, uuid, jsonb) from public;
comment on function private.audit(text, uuid, jsonb) is 'Record an audit event for the acting user (or fallback_user when the writer is the service).';

create function private.audit_conversation() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.audit('conversation_started', new.owner_id, jsonb_build_object(
      'conversation_id', new.id, 'model_stack', new.model_specs ->> 'name',
      'prompt_version_id', new.prompt_version_id, 'variant_id', new.variant_id));
  elsif old.status = 'active' and new.status <> 'active' then
    perform private.audit('conversation_ended', new.owner_id, jsonb_build_object(
      'conversation_id', new.id, 'status', new.status,
      'duration_s', round(extract(epoch from new.ended_at - new.started_at)::numeric, 1)));
  end if;
  return null;
end
$$;
create trigger conversations_audit after insert or update of status on public.conversations
  for each row execute function private.audit_conversation();

create function private.audit_export() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.audit('export_requested', new.owner_id, jsonb_build_object(
    'export_id', new.id, 'format', new.format, 'conversation_id', new.conversation_id));
  return null;
end
$$;
create trigger exports_audit after insert on public.exports
  for each row execute function private.audit_export();

create function private.audit_prompt_activation() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.active_version_id is distinct from old.active_version_id then
    perform private.audit('prompt_activated', null, jsonb_build_object(
      'prompt', new.slug, 'version_id', new.active_version_id,
      'version', (select v.version from public.prompt_versions v where v.id = new.active_version_id)));
  end if;
  return null;
end
$$;
create trigger system_prompts_audit after update of active_version_id on public.system_prompts
  for each row execute function private.audit_prompt_activation();

create function private.audit_experiment() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.status in ('running', 'stopped')
     and (tg_op = 'INSERT' or new.status is distinct from old.status) then
    perform private.audit(
      case new.status when 'running' then 'experiment_started' else 'experiment_stopped' end,
      null,
      jsonb_build_object('experiment_id', new.id, 'experiment', new.name, 'prompt_id', new.prompt_id));
  end if;
  return null;
end
$$;
create trigger prompt_experiments_audit after insert or update of status on public.prompt_experiments
  for each row execute function private.audit_experiment();

create function private.audit_role() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role is distinct from old.role then
    perform private.audit('role_changed', null, jsonb_build_object(
      'subject', new.id, 'subject_name', new.display_name, 'from', old.role, 'to', new.role));
  end if;
  return null;
end
$$;
create trigger profiles_audit_role after update of role on public.profiles
  for each row execute function private.audit_role();

create function private.audit_web_session() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.audit('login', new.user_id, '{}');
  else
    -- A session ends by sign-out (or a password change signing out the others) or,
    -- past its absolute expiry, by the sweep.
    perform private.audit('logout', old.user_id, jsonb_build_object(
      'reason', case when old.expires_at <= now() then 'expired' else 'signed out' end));
  end if;
  return null;
end
$$;
create trigger web_sessions_audit after insert or delete on private.web_sessions
  for each row execute function private.audit_web_session();
