"""Identity resolution in memory: which contact each message belongs to, and what merges.

The rules, applied to each message's identifiers in order (user id, external ids, email,
phone, anonymous id):
- The first identifier that leads to a compatible contact chooses the contact. A contact is
  incompatible when it holds a different user id (or external id of the same type) than the
  message: then the message belongs to someone else. The contact holding the message's user id
  is always compatible: a user id names one person, and an external id that contradicts it is
  not attached (else the message would make a contact that cannot hold its user id, and that a
  message of another user could then join).
- Another contact reached through the message's other identifiers is merged in, except when
  it is incompatible with the message, when the merge would join two different user ids (or
  external ids), and when it was reached through an anonymous id and has ever been
  identified. So two identified people are never merged through a shared browser or device.
- New identifiers are attached to the contact; a message that reaches no contact creates one.
- Placeholder values never get this far: `sodate.contacts.identifiers` drops them.

Contacts created while resolving have negative references until they are stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sodate.contacts.identifiers import IdentityKey, IdentityKind


class IdentityClaim(NamedTuple):
    """The identifiers one message carries, strongest first; `aliases` are alias previousIds.

    A tuple, so that an import's writer rebuilds the claims its parsing process prepared
    without a call to Python (`sodate.imports.reading`).
    """

    keys: tuple[IdentityKey, ...]
    aliases: tuple[IdentityKey, ...] = ()
    key_hashes: tuple[int, ...] = ()
    """The `identity_key` of each of `keys` in the workspace the claim is for, when worked out
    ahead (an import's parsing process, for its workspace); empty when not."""


@dataclass(frozen=True)
class PlannedMerge:
    survivor: int
    merged: int
    reason: str


@dataclass
class Resolver:
    """Resolves claims one after another against the identities loaded from the database."""

    key_owner: dict[IdentityKey, int]
    keys_of: dict[int, set[IdentityKey]]
    redirect: dict[int, int] = field(default_factory=dict)
    new_keys: dict[IdentityKey, int] = field(default_factory=dict)
    merges: list[PlannedMerge] = field(default_factory=list)
    new_contacts: list[int] = field(default_factory=list)

    @classmethod
    def from_identities(cls, identities: Iterable[tuple[IdentityKey, int]]) -> Resolver:
        key_owner: dict[IdentityKey, int] = {}
        keys_of: dict[int, set[IdentityKey]] = defaultdict(set)
        for key, contact in identities:
            key_owner[key] = contact
            keys_of[contact].add(key)
        return cls(key_owner=key_owner, keys_of=keys_of)

    def find(self, ref: int) -> int:
        while ref in self.redirect:
            ref = self.redirect[ref]
        return ref

    def resolve(self, claim: IdentityClaim) -> int:
        anchor: int | None = None
        for key in claim.keys:
            owner = self._owner(key)
            if owner is None:
                continue
            if anchor is None:
                # The contact of the message's user id is that user's, whatever else it holds.
                if key.kind == IdentityKind.USER_ID or self._compatible(owner, claim.keys):
                    anchor = owner
            elif owner != anchor and self._mergeable(anchor, owner, via=key, keys=claim.keys):
                anchor = self._merge(anchor, owner, f"shared {key.kind}")
        if anchor is None:
            anchor = -(len(self.new_contacts) + 1)
            self.new_contacts.append(anchor)
        for key in claim.keys:
            if key not in self.key_owner and self._may_attach(anchor, key):
                self._attach(key, anchor)
        for previous in claim.aliases:
            anchor = self._alias(anchor, previous)
        return anchor

    def _alias(self, anchor: int, previous: IdentityKey) -> int:
        owner = self._owner(previous)
        if owner is None or owner == anchor:
            return anchor
        if self._conflicts(anchor, owner, ignore=previous):
            return anchor
        return self._merge(anchor, owner, "alias")

    def _owner(self, key: IdentityKey) -> int | None:
        owner = self.key_owner.get(key)
        return None if owner is None else self.find(owner)

    def _strong_values(self, ref: int, kind: str) -> set[str]:
        return {key.value for key in self.keys_of[ref] if key.kind == kind}

    def _compatible(self, ref: int, keys: tuple[IdentityKey, ...]) -> bool:
        for key in keys:
            if key.is_strong:
                held = self._strong_values(ref, key.kind)
                if held and key.value not in held:
                    return False
        return True

    def _conflicts(self, a: int, b: int, *, ignore: IdentityKey | None = None) -> bool:
        kinds = {key.kind for key in self.keys_of[a] | self.keys_of[b] if key.is_strong}
        for kind in kinds:
            a_values = self._strong_values(a, kind)
            b_values = self._strong_values(b, kind)
            if ignore is not None and ignore.kind == kind:
                b_values.discard(ignore.value)
            if a_values and b_values and not a_values & b_values:
                return True
        return False

    def _mergeable(
        self, anchor: int, other: int, *, via: IdentityKey, keys: tuple[IdentityKey, ...]
    ) -> bool:
        # The other contact must fit the message too: else a message of one user would merge
        # in the contact of another, reached through a shared email or phone.
        if not self._compatible(other, keys):
            return False
        if via.kind == IdentityKind.ANONYMOUS_ID:
            return all(key.kind == IdentityKind.ANONYMOUS_ID for key in self.keys_of[other])
        return not self._conflicts(anchor, other)

    def _may_attach(self, ref: int, key: IdentityKey) -> bool:
        return not key.is_strong or not self._strong_values(ref, key.kind)

    def _attach(self, key: IdentityKey, ref: int) -> None:
        self.key_owner[key] = ref
        self.keys_of[ref].add(key)
        self.new_keys[key] = ref

    def _merge(self, anchor: int, other: int, reason: str) -> int:
        """Join two contacts; the stored one survives a new one, else the anchor survives."""
        survivor, merged = (other, anchor) if anchor < 0 <= other else (anchor, other)
        self.redirect[merged] = survivor
        self.keys_of[survivor] |= self.keys_of.pop(merged, set())
        for key, owner in self.key_owner.items():
            if owner == merged:
                self.key_owner[key] = survivor
        for key, owner in self.new_keys.items():
            if owner == merged:
                self.new_keys[key] = survivor
        if merged >= 0:
            self.merges.append(PlannedMerge(survivor=survivor, merged=merged, reason=reason))
        return survivor
