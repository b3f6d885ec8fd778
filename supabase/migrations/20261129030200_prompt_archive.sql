-- Archived system prompts: kept (their versions are history that conversations and
-- eval runs point at) but out of every list and never given to a new session.

alter table public.system_prompts add column archived_at timestamptz;
comment on column public.system_prompts.archived_at is 'When an admin archived the prompt; archived prompts are listed nowhere and start no session.';
