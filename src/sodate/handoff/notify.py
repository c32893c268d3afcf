"""What the owner, the managers and the CRM are told about a lead, and how it is sent.

The brief says why the lead is hot: its scores with each rule's points, its latest activity
and its company. It is read when the notification is sent, so it is current then. Emails go
through SMTP; the Slack-compatible post is `{"text": …}`; the CRM gets JSON signed with
HMAC-SHA256 over `"{timestamp}.{body}"` (header `Sodate-Signature: t=…,v1=…`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
from sqlalchemy.orm import Session

from sodate import profile
from sodate.contacts import service as contacts
from sodate.contacts.schemas import CompanyRef, ContactOut
from sodate.events import service as events
from sodate.events.schemas import EventOut
from sodate.handoff.schemas import HandoffOut
from sodate.scoring import service as scoring
from sodate.scoring.schemas import ModelScore
from sodate.workspaces import service as workspaces

RECENT_EVENTS = 5
TOP_REASONS = 5
HTTP_TIMEOUT_SECONDS = 10.0


class DeliveryError(Exception):
    """A webhook answered with an error, or could not be reached (worth retrying later)."""


@dataclass(frozen=True)
class LeadBrief:
    handoff: HandoffOut
    contact: ContactOut
    company: CompanyRef | None
    scores: dict[str, ModelScore]
    recent: list[EventOut]
    zone: ZoneInfo
    locale: str
    sender: str
    base_url: str
    """Where Sodate is reached (`SODATE_BASE_URL`), for links a reader can follow."""

    @property
    def who(self) -> str:
        """The lead's name on one line: a name's line breaks, which anyone who can identify
        may send, would end an email's subject header (and break the send for good)."""
        name = self.contact.name or self.contact.email or f"#{self.contact.id}"
        return _CONTROLS.sub(" ", name).strip()


_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def brief(
    session: Session, workspace_id: str, handoff: HandoffOut, *, now: datetime, base_url: str
) -> LeadBrief:
    workspace = workspaces.get_workspace(session, workspace_id)
    contact_id = contacts.live_contact_id(session, workspace_id, handoff.contact_id)
    contact = profile.complete_one(
        session, workspace_id, contacts.get_contact(session, workspace_id, contact_id), now=now
    )
    recent = events.timeline(session, workspace_id, contact_id, limit=RECENT_EVENTS, before=None)
    return LeadBrief(
        handoff=handoff,
        contact=contact,
        company=contact.company,
        scores=scoring.contact_scores(session, workspace_id, contact_id, now=now),
        recent=recent.items,
        zone=ZoneInfo(workspace.timezone),
        locale=workspace.locale,
        sender=formataddr(
            (workspace.sender_name or "Sodate", workspace.sender_email or "sodate@localhost")
        ),
        base_url=base_url,
    )


_TEXT = {
    "ja": {
        "assigned": "【ホットリード】{who} さんを担当してください",
        "escalated": "【対応期限超過】{who} さんのリードが未対応です",
        "intro_assigned": "{who} さんが MQL になり、あなたに割り当てられました。",
        "intro_escalated": "{who} さんのリードは期限までに承認も却下もされませんでした。",
        "due": "対応期限",
        "scores": "スコア",
        "recent": "最近の行動",
        "company": "会社",
        "none": "なし",
    },
    "en": {
        "assigned": "Hot lead: {who} is yours",
        "escalated": "Overdue: nobody acted on the lead {who}",
        "intro_assigned": "{who} became an MQL and was assigned to you.",
        "intro_escalated": "Nobody accepted or rejected the lead {who} before the deadline.",
        "due": "Act by",
        "scores": "Scores",
        "recent": "Recent activity",
        "company": "Company",
        "none": "none",
    },
}


def render(lead: LeadBrief, purpose: str) -> tuple[str, str]:
    """The subject and the plain-text body, in the workspace's language."""
    text = _TEXT.get(lead.locale, _TEXT["en"])
    subject = text[purpose].format(who=lead.who)
    lines = [text[f"intro_{purpose}"].format(who=lead.who), ""]
    contact = lead.contact
    lines += [f"{label}: {value}" for label, value in _identity(contact, lead.base_url) if value]
    if lead.handoff.due_at is not None:
        lines.append(f"{text['due']}: {_local(lead.handoff.due_at, lead.zone)}")
    lines += ["", f"■ {text['scores']}"]
    for key, score in lead.scores.items():
        lines.append(
            f"{key}: {score.total:g} (fit {score.fit:g} + engagement {score.engagement:g})"
        )
        top = sorted(score.reasons, key=lambda reason: -abs(reason.points))[:TOP_REASONS]
        lines += [f"  {reason.points:+g}  {reason.description}" for reason in top]
    lines += ["", f"■ {text['recent']}"]
    lines += [
        f"{_local(event.timestamp, lead.zone)}  {event.name or event.type}" for event in lead.recent
    ] or [text["none"]]
    lines += ["", f"■ {text['company']}"]
    if lead.company is None:
        lines.append(text["none"])
    else:
        lines.append(lead.company.name or lead.company.group_key)
        lines += [f"  {key}: {value}" for key, value in sorted(lead.company.traits.items())]
    return subject, "\n".join(lines) + "\n"


def _identity(contact: ContactOut, base_url: str) -> list[tuple[str, Any]]:
    return [
        ("name", contact.name),
        ("email", contact.email),
        ("phone", contact.phone),
        ("stage", contact.stage),
        ("contact", f"{base_url.rstrip('/')}/api/v1/contacts/{contact.id}"),
    ]


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def email_message(
    lead: LeadBrief, purpose: str, recipient: str, round_: int, *, now: datetime
) -> EmailMessage:
    subject, body = render(lead, purpose)
    message = EmailMessage()
    message["From"] = lead.sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    # The same notification sent twice (a retried job) carries the same id, so a mail system
    # that de-duplicates shows it once.
    message["Message-ID"] = (
        f"<handoff-{lead.handoff.id}-{purpose}-{round_}-{hashlib.sha256(recipient.encode()).hexdigest()[:12]}@sodate>"
    )
    message.set_content(body)
    return message


def post_slack(url: str, lead: LeadBrief, purpose: str, mentions: list[str]) -> None:
    subject, body = render(lead, purpose)
    text = f"*{subject}*\n" + (" ".join(mentions) + "\n" if mentions else "") + body
    _post(url, orjson.dumps({"text": slack_escaped(text)}), {})


def slack_escaped(text: str) -> str:
    """Text as Slack's message format shows it literally: its only markup characters, `&`,
    `<` and `>`, escaped. A lead's traits come from anyone with the public write key; left
    as they are, `<!channel>` would notify the whole channel and `<https://…|text>` would
    show a link under any words."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def crm_payload(lead: LeadBrief, event: str, *, now: datetime) -> bytes:
    return orjson.dumps(
        {
            "id": f"handoff-{lead.handoff.id}-{event}",
            "type": event,
            "created_at": now.isoformat(),
            "data": {
                "handoff": lead.handoff.model_dump(mode="json"),
                "contact": lead.contact.model_dump(mode="json"),
                "company": lead.company.model_dump(mode="json") if lead.company else None,
                "scores": {
                    key: score.model_dump(mode="json") for key, score in lead.scores.items()
                },
                "recent_events": [event.model_dump(mode="json") for event in lead.recent],
            },
        }
    )


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=…,v1=…`: HMAC-SHA256 with the secret over the timestamp, a dot and the body."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_crm(url: str, secret: str, event_id: str, body: bytes, *, now: datetime) -> None:
    headers = {
        "Sodate-Signature": signature(secret, int(now.timestamp()), body),
        "Sodate-Event-Id": event_id,
    }
    _post(url, body, headers)


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"POST {url}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"POST {url}: HTTP {response.status_code}: {response.text[:200]}")
