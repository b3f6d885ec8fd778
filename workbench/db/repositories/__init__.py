"""Typed async repositories, one module per aggregate. All SQL of the app lives here.

A repository wraps a connection already inside an identity: `rls_session`
(a user, under RLS) or `service_session` (the service, explicit about whom it
acts for). The identity decides what each query may see and change; the
repositories never filter by user in Python.

    async with pool.connection() as conn, rls_session(conn, claims):
        profile = await ProfilesRepo(conn).mine()
"""

from workbench.db.repositories.analytics import AnalyticsRepo
from workbench.db.repositories.annotations import AnnotationsRepo
from workbench.db.repositories.conversations import ConversationsRepo
from workbench.db.repositories.evals import EvalsRepo
from workbench.db.repositories.exports import ExportsRepo
from workbench.db.repositories.profiles import ProfilesRepo
from workbench.db.repositories.prompts import PromptsRepo
from workbench.db.repositories.rooms import RoomsRepo
from workbench.db.repositories.workers import WorkersRepo

__all__ = [
    "AnalyticsRepo",
    "AnnotationsRepo",
    "ConversationsRepo",
    "EvalsRepo",
    "ExportsRepo",
    "ProfilesRepo",
    "PromptsRepo",
    "RoomsRepo",
    "WorkersRepo",
]
