"""The handoff document (a workspace's rules), handoffs as shown, decisions, and lead KPIs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from sodate.conditions.reads import reads
from sodate.conditions.schemas import Condition, bounded, dump_condition
from sodate.handoff.models import HandoffState, StepKind

MAX_ASSIGN_RULES = 100
MAX_OWNERS = 100
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssignRule(_Strict):
    """Leads that satisfy `when` go to `owners` (users, by email), in turn."""

    when: Condition
    owners: Annotated[list[EmailStr], Field(min_length=1, max_length=MAX_OWNERS)]

    @model_validator(mode="before")
    @classmethod
    def _bounded_nesting(cls, data: Any) -> Any:
        return bounded(data, "when")

    @field_validator("when")
    @classmethod
    def _no_clock(cls, when: Condition) -> Condition:
        if reads(when).clock:
            raise ValueError("an assignment rule is checked once, when the lead is handed off")
        return when


class Notify(_Strict):
    email: bool = True
    """Email the owner (and, on escalation, the managers) through SODATE_SMTP_URL."""
    slack_webhook: AnyHttpUrl | None = None
    """A Slack-compatible incoming webhook: a JSON `{"text": …}` is posted to it."""


class CrmWebhook(_Strict):
    """Each handoff, acceptance and rejection is posted to `url`, signed with `secret`."""

    url: AnyHttpUrl
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)]


class HandoffRulesIn(_Strict):
    """`PUT /api/v1/handoff`: how a new MQL is handed to sales."""

    assign: Annotated[list[AssignRule], Field(max_length=MAX_ASSIGN_RULES)] = []
    """The first rule the lead satisfies picks the owners; with none, every sales user."""
    notify: Notify = Notify()
    # Strict: `true` is not an hour.
    sla_hours: Annotated[float, Field(gt=0, le=24 * 90, strict=True)] = 24
    escalate_to: Annotated[list[EmailStr], Field(max_length=MAX_OWNERS)] = []
    """Users (managers) told when an owner lets the SLA pass."""
    reassign_on_escalation: bool = True
    """On escalation, pass the lead to the next owner of its pool (when there is another)."""
    crm_webhook: CrmWebhook | None = None


class CrmWebhookOut(BaseModel):
    url: str
    """The secret is never shown."""


class NotifyOut(BaseModel):
    email: bool = True
    slack_webhook: str | None = None
    """The webhook's origin only (`https://hooks.slack.com/…`): its URL lets anyone post to
    the channel, so it is a secret, as the CRM's is."""

    @classmethod
    def of(cls, notify: Notify) -> NotifyOut:
        url = notify.slack_webhook
        if url is None:
            return cls(email=notify.email)
        parts = urlsplit(str(url))
        host = parts.netloc.rpartition("@")[2]
        return cls(email=notify.email, slack_webhook=f"{parts.scheme}://{host}/…")


class HandoffRulesOut(BaseModel):
    assign: list[dict[str, Any]] = []
    notify: NotifyOut = NotifyOut()
    sla_hours: float = 24
    escalate_to: list[str] = []
    reassign_on_escalation: bool = True
    crm_webhook: CrmWebhookOut | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, rules: HandoffRulesIn, updated_at: datetime) -> HandoffRulesOut:
        return cls(
            assign=[
                {"when": dump_condition(rule.when), "owners": list(rule.owners)}
                for rule in rules.assign
            ],
            notify=NotifyOut.of(rules.notify),
            sla_hours=rules.sla_hours,
            escalate_to=list(rules.escalate_to),
            reassign_on_escalation=rules.reassign_on_escalation,
            crm_webhook=CrmWebhookOut(url=str(rules.crm_webhook.url))
            if rules.crm_webhook
            else None,
            updated_at=updated_at,
        )


class StepOut(BaseModel):
    kind: StepKind
    owner_user_id: int | None
    by_user_id: int | None
    by_api_key_id: int | None
    at: datetime


class HandoffOut(BaseModel):
    id: int
    contact_id: int
    state: HandoffState
    owner_user_id: int | None
    owner_email: str | None
    assigned_by: str
    opened_at: datetime
    due_at: datetime | None
    escalations: int
    decided_at: datetime | None
    reason: str | None
    engagement_reset: bool
    steps: list[StepOut] = []


class HandoffPage(BaseModel):
    items: list[HandoffOut]
    next_cursor: str | None


class RejectIn(_Strict):
    reason: Reason
    reset_engagement: bool = False
    """Also set the lead's engagement score (in the MQL model) back to 0."""


class LeadKpis(BaseModel):
    """Lead KPIs over a period: what happened at or after `since` and before `until` (None:
    up to now)."""

    since: datetime
    until: datetime | None
    mql: int
    """Contacts that became MQL in the period."""
    handed_off: int
    accepted: int
    rejected: int
    pending: int
    escalated: int
    """Handoffs whose SLA passed at least once."""
    mql_to_sql_rate: float | None
    """Accepted ÷ handed off (None: nothing handed off)."""
    lead_time_hours_median: float | None
    """From MQL to acceptance, over the accepted handoffs."""
    lead_time_hours_mean: float | None
    within_sla_rate: float | None
    """Of the decided handoffs, the share decided before the first deadline."""
