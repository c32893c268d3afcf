"""The identity-resolution rules (`sodate.contacts.resolution.Resolver`), in memory.

Claims list their keys as the event pipeline builds them: user id, external ids, email, phone,
anonymous id; alias claims add the previous id as user id and anonymous id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodate.contacts.identifiers import IdentityKey, IdentityKind, external_kind
from sodate.contacts.resolution import IdentityClaim, PlannedMerge, Resolver


def user(value: str) -> IdentityKey:
    return IdentityKey(IdentityKind.USER_ID, value)


def anon(value: str) -> IdentityKey:
    return IdentityKey(IdentityKind.ANONYMOUS_ID, value)


def email(value: str) -> IdentityKey:
    return IdentityKey(IdentityKind.EMAIL, value)


def phone(value: str) -> IdentityKey:
    return IdentityKey(IdentityKind.PHONE, value)


def line(value: str) -> IdentityKey:
    return IdentityKey(external_kind("line"), value)


def claim(*keys: IdentityKey, alias: str | None = None) -> IdentityClaim:
    aliases = (user(alias), anon(alias)) if alias is not None else ()
    return IdentityClaim(keys=keys, aliases=aliases)


def stored(*identities: tuple[IdentityKey, int]) -> Resolver:
    return Resolver.from_identities(identities)


def keys_of(resolver: Resolver, ref: int) -> set[IdentityKey]:
    return resolver.keys_of[resolver.find(ref)]


# --- the rules, one by one ---------------------------------------------------------------------


def test_a_claim_that_reaches_nobody_makes_a_new_contact_with_its_keys() -> None:
    resolver = stored()
    ref = resolver.resolve(claim(user("u1"), email("a@example.jp"), anon("a1")))
    assert ref < 0
    assert resolver.new_contacts == [ref]
    assert resolver.new_keys == {
        user("u1"): ref,
        email("a@example.jp"): ref,
        anon("a1"): ref,
    }
    assert resolver.merges == []


def test_anonymous_activity_becomes_the_person_on_identify() -> None:
    resolver = stored()
    browsing = resolver.resolve(claim(anon("a1")))
    identified = resolver.resolve(claim(user("u1"), anon("a1")))
    assert resolver.find(identified) == resolver.find(browsing)
    assert keys_of(resolver, browsing) == {user("u1"), anon("a1")}
    assert len(resolver.new_contacts) == 1


def test_a_stored_anonymous_contact_is_merged_into_the_identified_one() -> None:
    resolver = stored((user("u1"), 1), (anon("laptop"), 1), (anon("phone"), 2))
    ref = resolver.resolve(claim(user("u1"), anon("phone")))
    assert ref == 1
    assert resolver.merges == [PlannedMerge(survivor=1, merged=2, reason="shared anonymous_id")]
    assert resolver.find(2) == 1
    assert keys_of(resolver, 1) == {user("u1"), anon("laptop"), anon("phone")}
    assert resolver.new_keys == {}


def test_two_people_on_one_device_are_never_merged() -> None:
    resolver = stored()
    alice = resolver.resolve(claim(user("alice"), anon("device")))
    bob = resolver.resolve(claim(user("bob"), anon("device")))
    assert resolver.find(alice) != resolver.find(bob)
    assert keys_of(resolver, bob) == {user("bob")}
    # Stored, the same.
    resolver = stored((user("alice"), 1), (anon("device"), 1), (user("bob"), 2))
    assert resolver.resolve(claim(user("bob"), anon("device"))) == 2
    assert resolver.merges == []
    # An identified contact reached through an anonymous id is not merged either, even when
    # the claim's own contact has no user id yet.
    resolver = stored((email("c@example.jp"), 1), (user("carol"), 2), (anon("device"), 2))
    assert resolver.resolve(claim(email("c@example.jp"), anon("device"))) == 1
    assert resolver.merges == []


def test_an_email_joins_the_contact_that_has_it() -> None:
    resolver = stored((email("hanako@example.jp"), 7))
    ref = resolver.resolve(claim(user("u9"), email("hanako@example.jp"), anon("a9")))
    assert ref == 7
    assert resolver.new_keys == {user("u9"): 7, anon("a9"): 7}
    assert resolver.new_contacts == []


def test_an_email_of_another_user_does_not_join_them() -> None:
    resolver = stored((user("u1"), 1), (email("shared@example.jp"), 1))
    ref = resolver.resolve(claim(user("u2"), email("shared@example.jp")))
    assert ref < 0
    assert keys_of(resolver, ref) == {user("u2")}
    assert resolver.key_owner[email("shared@example.jp")] == 1


def test_a_claim_never_lands_on_a_contact_of_another_user_through_a_merge() -> None:
    # The email leads to an unidentified contact, the phone to someone else: u2 must not join
    # them, and the contact of u3 must not be merged into the contact that u2 gets.
    resolver = stored((email("e@example.jp"), 1), (user("u3"), 2), (phone("+819012345678"), 2))
    ref = resolver.resolve(claim(user("u2"), email("e@example.jp"), phone("+819012345678")))
    assert ref == 1
    assert {key for key in keys_of(resolver, ref) if key.kind == IdentityKind.USER_ID} == {
        user("u2")
    }
    assert resolver.merges == []


def test_contacts_of_one_person_are_merged_through_a_shared_email_or_phone() -> None:
    resolver = stored((user("u1"), 1), (email("taro@example.jp"), 2), (phone("+819012345678"), 3))
    ref = resolver.resolve(claim(user("u1"), email("taro@example.jp"), phone("+819012345678")))
    assert ref == 1
    assert resolver.merges == [
        PlannedMerge(survivor=1, merged=2, reason="shared email"),
        PlannedMerge(survivor=1, merged=3, reason="shared phone"),
    ]


def test_external_ids_are_one_per_type_and_contact() -> None:
    resolver = stored((line("L1"), 1), (anon("a1"), 1))
    assert resolver.resolve(claim(line("L1"), anon("a2"))) == 1
    other = resolver.resolve(claim(line("L2"), anon("a1")))
    assert other < 0
    assert keys_of(resolver, other) == {line("L2")}
    # A user id and a LINE id of one person live together.
    assert resolver.resolve(claim(user("u1"), line("L1"))) == 1
    assert keys_of(resolver, 1) == {line("L1"), anon("a1"), anon("a2"), user("u1")}


def test_new_contacts_of_one_batch_merge_without_a_stored_merge() -> None:
    resolver = stored()
    first = resolver.resolve(claim(anon("a1")))
    second = resolver.resolve(claim(anon("a2")))
    joined = resolver.resolve(claim(user("u1"), anon("a1"), anon("a2")))
    assert resolver.find(first) == resolver.find(second) == resolver.find(joined)
    assert resolver.merges == []  # nothing stored was merged
    assert [ref for ref in resolver.new_contacts if ref not in resolver.redirect] == [first]


def test_a_stored_contact_survives_a_new_one() -> None:
    resolver = stored((email("a@example.jp"), 5))
    new = resolver.resolve(claim(anon("a1")))
    survivor = resolver.resolve(claim(email("a@example.jp"), anon("a1")))
    assert survivor == 5
    assert resolver.find(new) == 5
    assert resolver.new_keys == {anon("a1"): 5}
    assert resolver.merges == []


def test_alias_merges_the_previous_contact_when_safe() -> None:
    resolver = stored((anon("anon-1"), 1), (user("u1"), 2))
    ref = resolver.resolve(claim(user("u1"), alias="anon-1"))
    assert ref == 2
    assert resolver.merges == [PlannedMerge(survivor=2, merged=1, reason="alias")]
    # A user id renamed: the old id's contact takes the new id.
    resolver = stored((user("old"), 1))
    ref = resolver.resolve(claim(user("new"), alias="old"))
    assert ref == 1
    assert keys_of(resolver, 1) == {user("old"), user("new")}


def test_alias_refuses_when_both_have_other_user_ids() -> None:
    resolver = stored((user("alice"), 1), (anon("alice-browser"), 1), (user("bob"), 2))
    assert resolver.resolve(claim(user("bob"), alias="alice-browser")) == 2
    assert resolver.merges == []
    assert keys_of(resolver, 2) == {user("bob")}


def test_resolving_the_same_claim_again_changes_nothing() -> None:
    resolver = stored((user("u1"), 1), (anon("a2"), 2), (email("x@example.jp"), 3))
    same = claim(user("u1"), email("x@example.jp"), anon("a2"), anon("a3"))
    first = resolver.resolve(same)
    state = (list(resolver.merges), dict(resolver.new_keys), list(resolver.new_contacts))
    assert resolver.resolve(same) == first
    assert (resolver.merges, resolver.new_keys, resolver.new_contacts) == state


# --- properties --------------------------------------------------------------------------------

USER_IDS = ("u1", "u2", "u3")
ANONYMOUS_IDS = ("a1", "a2", "a3")
EMAILS = ("e1@example.jp", "e2@example.jp")
PHONES = ("+819012345678", "+81312345678")
LINE_IDS = ("L1", "L2")


def make_claim(
    user_id: str | None,
    line_id: str | None,
    address: str | None,
    number: str | None,
    anonymous_id: str | None,
    previous: str | None,
) -> IdentityClaim:
    keys: list[IdentityKey] = []
    if user_id:
        keys.append(user(user_id))
    if line_id:
        keys.append(line(line_id))
    if address:
        keys.append(email(address))
    if number:
        keys.append(phone(number))
    if anonymous_id or not keys:
        keys.append(anon(anonymous_id or ANONYMOUS_IDS[0]))
    return claim(*keys, alias=previous)


def optional(values: Sequence[str]) -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(values)


def claims(*, aliases: bool) -> st.SearchStrategy[IdentityClaim]:
    return st.builds(
        make_claim,
        optional(USER_IDS),
        optional(LINE_IDS),
        optional(EMAILS),
        optional(PHONES),
        optional(ANONYMOUS_IDS),
        optional(USER_IDS + ANONYMOUS_IDS) if aliases else st.none(),
    )


def batches(*, aliases: bool) -> st.SearchStrategy[list[list[IdentityClaim]]]:
    return st.lists(
        st.lists(claims(aliases=aliases), min_size=1, max_size=6), min_size=1, max_size=4
    )


@dataclass
class Store:
    """The identities and merges as the database keeps them between batches.

    Mirrors `sodate.contacts.identity.resolve_identities`: load the identities of the keys a
    batch names and every identity of the contacts they lead to, resolve, then store.
    """

    owner: dict[IdentityKey, int] = field(default_factory=dict)
    merged_into: dict[int, int] = field(default_factory=dict)
    contacts: int = 0
    aliased: bool = False
    results: list[tuple[IdentityClaim, int]] = field(default_factory=list)

    def live(self, contact: int) -> int:
        while contact in self.merged_into:
            contact = self.merged_into[contact]
        return contact

    def resolver_for(self, batch: Iterable[IdentityClaim]) -> Resolver:
        wanted = {key for c in batch for key in (*c.keys, *c.aliases)}
        holders = {self.owner[key] for key in wanted if key in self.owner}
        return Resolver.from_identities(
            (key, contact) for key, contact in self.owner.items() if contact in holders
        )

    def process(self, batch: Sequence[IdentityClaim]) -> list[int]:
        resolver = self.resolver_for(batch)
        refs = []
        for one in batch:
            self.aliased |= any(key in resolver.key_owner for key in one.aliases)
            ref = resolver.resolve(one)
            check_resolver(resolver)
            state = (len(resolver.merges), dict(resolver.new_keys), len(resolver.new_contacts))
            again = resolver.resolve(one)
            assert resolver.find(again) == resolver.find(ref), one
            assert state == (
                len(resolver.merges),
                resolver.new_keys,
                len(resolver.new_contacts),
            ), one
            refs.append(ref)
        real: dict[int, int] = {}
        for ref in resolver.new_contacts:
            if ref not in resolver.redirect:
                self.contacts += 1
                real[ref] = self.contacts

        def final(ref: int) -> int:
            ref = resolver.find(ref)
            return real.get(ref, ref)

        for merge in resolver.merges:
            assert merge.survivor > 0
            assert merge.merged > 0
            assert merge.merged not in self.merged_into
            self.merged_into[merge.merged] = merge.survivor
            for key, contact in self.owner.items():
                if contact == merge.merged:
                    self.owner[key] = merge.survivor
        for key, ref in resolver.new_keys.items():
            self.owner.setdefault(key, final(ref))
        contacts = [final(ref) for ref in refs]
        self.results.extend(zip(batch, contacts, strict=True))
        return contacts

    def user_ids(self) -> dict[int, set[str]]:
        held: dict[int, set[str]] = defaultdict(set)
        for key, contact in self.owner.items():
            if key.kind == IdentityKind.USER_ID:
                held[contact].add(key.value)
        return held


def check_resolver(resolver: Resolver) -> None:
    """Every key leads to one live contact, and that contact lists it."""
    for key, owner in resolver.key_owner.items():
        live = resolver.find(owner)
        assert live not in resolver.redirect
        assert key in resolver.keys_of[live], key
    seen: set[IdentityKey] = set()
    for ref, keys in resolver.keys_of.items():
        assert ref not in resolver.redirect or not keys, ref
        assert not keys & seen
        seen |= keys


def user_id_of(one: IdentityClaim) -> str | None:
    return next((key.value for key in one.keys if key.kind == IdentityKind.USER_ID), None)


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(batches(aliases=False))
def test_property_identity_resolution_never_joins_two_users(
    sequence: list[list[IdentityClaim]],
) -> None:
    store = Store()
    for batch in sequence:
        store.process(batch)
        # Every identity key leads to exactly one live contact.
        assert all(contact not in store.merged_into for contact in store.owner.values())
        # No contact holds two user ids (nor two LINE ids).
        assert all(len(values) == 1 for values in store.user_ids().values())
        lines: dict[int, set[str]] = defaultdict(set)
        for key, contact in store.owner.items():
            if key.kind == external_kind("line"):
                lines[contact].add(key.value)
        assert all(len(values) == 1 for values in lines.values())
    # Claims that carry different user ids never resolve to the same contact, now or later.
    by_contact: dict[int, set[str]] = defaultdict(set)
    for one, contact in store.results:
        if (value := user_id_of(one)) is not None:
            by_contact[store.live(contact)].add(value)
    assert all(len(values) == 1 for values in by_contact.values()), by_contact
    # A claim resolved once more, in a later batch, lands where it did and changes nothing.
    last, contact = store.results[-1]
    identities = dict(store.owner)
    assert store.process([last]) == [store.live(contact)]
    assert store.owner == identities


@PROPERTY_SETTINGS
@given(batches(aliases=True))
def test_property_only_an_alias_gives_a_contact_two_user_ids(
    sequence: list[list[IdentityClaim]],
) -> None:
    store = Store()
    for batch in sequence:
        store.process(batch)
        assert all(contact not in store.merged_into for contact in store.owner.values())
        if not store.aliased:
            assert all(len(values) == 1 for values in store.user_ids().values())
