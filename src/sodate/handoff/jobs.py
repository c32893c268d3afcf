"""Handoff's background work: the opener service, and the jobs that notify, escalate and post
to the CRM.

Each job does its outside work (an SMTP send, an HTTP post) and commits with its completion;
a failure raises, and the queue retries it with backoff. The notification's content is read
when it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from sodate import mail
from sodate.db.locks import lock_workspace
from sodate.errors import NotFound
from sodate.handoff import notify, opening, service
from sodate.handoff import rules as handoff_rules
from sodate.handoff.schemas import HandoffRulesIn
from sodate.queue.handlers import ClaimedJob, JobContext, job_handler
from sodate.worker_types import Service, ServiceContext, sweep_workspaces
from sodate.workspaces import service as workspaces


def _open_one(session: Session, workspace_id: str, now: datetime) -> int:
    return opening.open_handoffs(session, workspace_id, now=now)


def _open(context: ServiceContext) -> int:
    return sweep_workspaces(context, handoff_rules.workspaces_with_rules, _open_one)


handoff_opener = Service(
    name="handoff-opener",
    run=_open,
    enabled_setting="handoff_enabled",
    interval_setting="handoff_interval_seconds",
    jitter=0.1,
)


def _lead(
    context: JobContext, job: ClaimedJob
) -> tuple[str, HandoffRulesIn, notify.LeadBrief] | None:
    """The job's workspace, its handoff rules and the brief of its lead; None when the
    workspace, its rules or the handoff are gone (nothing left to tell)."""
    if job.workspace_id is None:
        return None
    rules = handoff_rules.saved_rules(context.session, job.workspace_id)
    if rules is None:
        return None
    try:
        handoff = service.get_handoff(context.session, job.workspace_id, job.payload["handoff_id"])
    except NotFound:
        return None
    lead = notify.brief(
        context.session,
        job.workspace_id,
        handoff,
        now=context.now,
        base_url=context.runtime.settings.base_url,
    )
    return job.workspace_id, rules, lead


@job_handler(opening.NOTIFY_JOB)
def send_notifications(context: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    for job in jobs:
        if (found := _lead(context, job)) is None:
            continue
        workspace_id, rules, lead = found
        purpose = job.payload["purpose"]
        if job.payload["channel"] == "email":
            smtp_url = context.runtime.settings.smtp_url
            if smtp_url is None:
                raise mail.MailError("SODATE_SMTP_URL is not set: cannot email the owner")
            user = workspaces.get_user(context.session, workspace_id, job.payload["user_id"])
            message = notify.email_message(
                lead, purpose, user.email, job.payload["round"], now=context.now
            )
            mail.send(smtp_url, message)
        elif rules.notify.slack_webhook is not None:
            users = {u.id: u for u in workspaces.list_users(context.session, workspace_id)}
            mentions = [users[i].email for i in job.payload["user_ids"] if i in users]
            notify.post_slack(str(rules.notify.slack_webhook), lead, purpose, mentions)


@job_handler(opening.SLA_JOB)
def check_deadlines(context: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    for job in jobs:
        if job.workspace_id is not None:
            lock_workspace(context.session, job.workspace_id, wait=True)
            service.escalate(
                context.session,
                job.workspace_id,
                job.payload["handoff_id"],
                job.payload["escalations"],
                now=context.now,
            )


@job_handler(opening.CRM_JOB)
def post_to_crm(context: JobContext, jobs: Sequence[ClaimedJob]) -> None:
    for job in jobs:
        if (found := _lead(context, job)) is None:
            continue
        _, rules, lead = found
        if rules.crm_webhook is None:
            continue
        event = job.payload["event"]
        body = notify.crm_payload(lead, event, now=context.now)
        event_id = f"handoff-{lead.handoff.id}-{event}"
        webhook = rules.crm_webhook
        notify.post_crm(str(webhook.url), webhook.secret, event_id, body, now=context.now)
