-- Voices may name a variant: espeak-ng's are `voice+variant` (e.g. `en-us+f3`), which the
-- settings schema refused. The same schema otherwise; `UserSettings` mirrors it.

create or replace function public.valid_user_settings(settings jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(settings) = 'object'
    and (select coalesce(bool_and(key in ('stack', 'voice', 'language', 'ui')), true)
         from jsonb_object_keys(settings) as key)
    and (not settings ? 'stack' or (jsonb_typeof(settings -> 'stack') = 'string'
         and settings ->> 'stack' ~ '^[a-z0-9][a-z0-9_-]{0,63}$'))
    and (not settings ? 'voice' or (jsonb_typeof(settings -> 'voice') = 'string'
         and settings ->> 'voice' ~ '^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$'))
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
