-- Local-only seed: demo prompts. Applied by `./dev up` on the embedded stack (never on a
-- hosted project), after the local accounts were made through Supabase Auth's admin API
-- (workbench/stack/local_accounts.py; the admin's fixed id is the prompts' author).
-- Idempotent: a prompt slug that exists is left alone.

do $$
begin
  -- Only while the seeded admin (their author) exists: deleting that account sticks.
  if not exists (select 1 from public.system_prompts where slug = 'voice-assistant')
     and exists (select 1 from public.profiles where id = '00000000-0000-4000-a000-000000000001') then
    insert into public.system_prompts (id, slug, title, description, created_by)
    values ('00000000-0000-4000-b000-000000000001', 'voice-assistant', 'Voice assistant',
            'Default prompt of the live agent.', '00000000-0000-4000-a000-000000000001');
    insert into public.prompt_versions (id, prompt_id, version, body, variables, notes, author_id) values
      ('00000000-0000-4000-b000-000000000011', '00000000-0000-4000-b000-000000000001', 0,
       'You are a friendly voice assistant talking with {{user_name}}. Answer in one or two short spoken sentences. Never use lists, markdown or emoji.',
       '{user_name}', 'baseline', '00000000-0000-4000-a000-000000000001'),
      ('00000000-0000-4000-b000-000000000012', '00000000-0000-4000-b000-000000000001', 0,
       'You are a concise voice assistant talking with {{user_name}}. Reply in a single spoken sentence of at most twenty words. Never use lists, markdown or emoji.',
       '{user_name}', 'shorter replies for lower latency', '00000000-0000-4000-a000-000000000001'),
      -- The small model apologised and declined far less under a plain assistant prompt
      -- (bench/reply_quality.py, chosen on its tuning requests, checked on the held-out ones).
      ('00000000-0000-4000-b000-000000000013', '00000000-0000-4000-b000-000000000001', 0,
       'You are a helpful assistant. Keep every answer to one or two short sentences.',
       '{}', 'fewer apologies and refusals from small models', '00000000-0000-4000-a000-000000000001');
    update public.system_prompts set active_version_id = '00000000-0000-4000-b000-000000000013'
    where id = '00000000-0000-4000-b000-000000000001';
  end if;
end
$$;
