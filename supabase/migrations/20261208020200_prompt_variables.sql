-- Prompt variables that mean something. Every {{variable}} of a live session was filled
-- with the participant's display name. Now a version declares a default for each of its
-- variables (the built-in `user_name`, the participant's display name, excepted), an
-- experiment arm may set its own values, and a researcher's or admin's room may set
-- them too (the Conversation page: room metadata). The agent fills each variable with
-- the most specific value and records the values with the conversation.

alter table public.prompt_versions add column variable_defaults jsonb not null default '{}';
comment on column public.prompt_versions.variable_defaults is 'A default value for each {{variable}} but user_name (the participant''s display name).';
alter table public.experiment_variants add column variable_values jsonb not null default '{}';
comment on column public.experiment_variants.variable_values is 'Values this arm gives its version''s variables (over the version''s defaults).';

-- Values are an object of variable name -> text (at most 500 characters), naming only
-- variables the version has; a version gives every variable but user_name a default.
-- One trigger function for both tables: a function it called would need EXECUTE for
-- the signed-in admin, and private functions are not theirs to run.
create function private.check_prompt_values() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  candidate jsonb;
  names text[];
  what text;
  var_name text;
  var_value jsonb;
  missing text[];
begin
  if tg_table_name = 'prompt_versions' then
    candidate := new.variable_defaults;
    names := new.variables;
    what := 'the defaults';
  else
    candidate := new.variable_values;
    names := (select v.variables from public.prompt_versions v where v.id = new.prompt_version_id);
    what := 'the arm''s values';
  end if;
  if jsonb_typeof(candidate) <> 'object' then
    raise exception '% must map variable names to text', what using errcode = '23514';
  end if;
  for var_name, var_value in select * from jsonb_each(candidate) loop
    if not (var_name = any (names)) then
      raise exception '% name %, which is not a variable of the version (it has: %)',
        what, var_name, coalesce(nullif(array_to_string(names, ', '), ''), 'none')
        using errcode = '23514';
    end if;
    if jsonb_typeof(var_value) <> 'string' or char_length(var_value #>> '{}') > 500 then
      raise exception 'the value of % in % must be text of at most 500 characters', var_name, what
        using errcode = '23514';
    end if;
  end loop;
  if tg_table_name = 'prompt_versions' then
    select array_agg(v) into missing
    from unnest(names) v
    where v <> 'user_name' and not candidate ? v;
    if missing is not null then
      raise exception 'variables without a default value: %', array_to_string(missing, ', ')
        using errcode = '23514';
    end if;
  end if;
  return new;
end
$$;
revoke all on function private.check_prompt_values() from public;
create trigger prompt_versions_values before insert on public.prompt_versions
  for each row execute function private.check_prompt_values();
create trigger experiment_variants_values before insert or update on public.experiment_variants
  for each row execute function private.check_prompt_values();
