"""Work the project database queues for later: verifications asked for over the API.

Beside the webhook layer, not under the REST service: the queue is read and drained by the API
processes and by ``hokusai verifications worker`` (an evaluation replica that serves no HTTP)
alike. It depends on the project database and on the registry's verification methods only.
"""

from hokusai.jobs.runner import VerificationRunner, Verifier
from hokusai.jobs.verifications import (
    MAX_ATTEMPTS,
    STATES,
    Enqueued,
    VerificationJob,
    VerificationJobs,
)

__all__ = [
    "MAX_ATTEMPTS",
    "STATES",
    "Enqueued",
    "VerificationJob",
    "VerificationJobs",
    "VerificationRunner",
    "Verifier",
]
