-- Local-only seed: an admin, a researcher and demo prompts. Applied by `./dev up` on the
-- embedded stack (never on a hosted project). Idempotent. Passwords: see README.

do $$
declare
  seed record;
begin
  for seed in
    select * from (values
      ('00000000-0000-4000-a000-000000000001'::uuid, 'admin@workbench.local', 'Admin', 'admin'),
      ('00000000-0000-4000-a000-000000000002'::uuid, 'researcher@workbench.local', 'Researcher', 'researcher')
    ) as s (id, email, display_name, role)
  loop
    insert into auth.users (instance_id, id, aud, role, email, encrypted_password, confirmed_at,
                            raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
    values ('00000000-0000-0000-0000-000000000000', seed.id, 'authenticated', 'authenticated', seed.email,
            extensions.crypt('workbench-local', extensions.gen_salt('bf', 10)), now(),
            '{"provider": "email", "providers": ["email"]}', jsonb_build_object('display_name', seed.display_name),
            now(), now())
    on conflict (id) do nothing;
    -- GoTrue (when it has run its migrations) signs in through an identity row.
    if to_regclass('auth.identities') is not null then
      execute $sql$
        insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
        values ($1::text, $1, jsonb_build_object('sub', $1::text, 'email', $2::text), 'email', now(), now())
        on conflict do nothing
      $sql$ using seed.id, seed.email;
    end if;
    update public.profiles set role = seed.role::public.app_role where id = seed.id and role <> seed.role::public.app_role;
  end loop;

  if not exists (select 1 from public.system_prompts where slug = 'voice-assistant') then
    insert into public.system_prompts (id, slug, title, description, created_by)
    values ('00000000-0000-4000-b000-000000000001', 'voice-assistant', 'Voice assistant',
            'Default prompt of the live agent.', '00000000-0000-4000-a000-000000000001');
    insert into public.prompt_versions (id, prompt_id, version, body, variables, notes, author_id) values
      ('00000000-0000-4000-b000-000000000011', '00000000-0000-4000-b000-000000000001', 0,
       'You are a friendly voice assistant talking with {{user_name}}. Answer in one or two short spoken sentences. Never use lists, markdown or emoji.',
       '{user_name}', 'baseline', '00000000-0000-4000-a000-000000000001'),
      ('00000000-0000-4000-b000-000000000012', '00000000-0000-4000-b000-000000000001', 0,
       'You are a concise voice assistant talking with {{user_name}}. Reply in a single spoken sentence of at most twenty words. Never use lists, markdown or emoji.',
       '{user_name}', 'shorter replies for lower latency', '00000000-0000-4000-a000-000000000001');
    update public.system_prompts set active_version_id = '00000000-0000-4000-b000-000000000011'
    where id = '00000000-0000-4000-b000-000000000001';
  end if;
end
$$;
