-- A room is joined as its owner only with the room's own key. The agent used to
-- record a participant whose identity was the room owner's id, and anyone holding
-- the LiveKit key pair can mint any identity for any room. Now the web app makes a
-- random key per room, records its SHA-256 here with the owner, and puts the key in
-- the owner's join token (a participant attribute); the agent records a participant
-- only when the key it presents hashes to this one. Rooms opened before have none
-- and are not recorded.

alter table private.rooms add column key_sha256 bytea
  check (key_sha256 is null or octet_length(key_sha256) = 32);
comment on column private.rooms.key_sha256 is
  'SHA-256 of the room key the owner''s join token carries; the agent admits only a participant presenting it.';
