"""Probabilistic patient matching (Fellegi–Sunter) and a small master patient index.

When organizations share records, nobody shares a patient id: the clinic's MRN means nothing
to the hospital. An exchange decides "same person?" from demographics, and it can be wrong in
both directions. This module makes that decision *visible*.

How a score is built (Fellegi–Sunter):

* Each field of a pair (given name, family name, birth date, sex, address, phone) is compared
  and given an **agreement level** — e.g. the birth dates are ``exact``, ``transposed`` (day
  and month swapped), ``one-digit`` (a single typo) or ``disagree``.
* Each level has two probabilities: **m** = P(level | same person) and **u** = P(level |
  different people). Agreement on a rare value (a full birth date) is strong evidence because u
  is tiny; agreement on sex is weak because half of all strangers share it.
* The level's **weight** is ``log2(m / u)``: positive when the level is more typical of the
  same person, negative when more typical of strangers. A missing value weighs 0.
* The **total** is the sum of the field weights. ``total >= link_threshold`` -> ``"match"``
  (linked automatically), ``total >= review_threshold`` -> ``"review"`` (a person must
  decide), below -> ``"non-match"``.

The model assumes fields are independent given match status. Family members break that
assumption — twins share family name, birth date, address and phone — which is why twins can
score high enough to be merged by mistake (a *false merge*), while one person with a
transposed birth date, a nickname and a new address can score too low (a *missed match*).
:attr:`MatchScore.explanation` shows which fields drove each decision.

>>> a = {"resourceType": "Patient", "id": "a", "name": [{"family": "Rivera", "given": ["William"]}],
...      "birthDate": "1980-04-12", "gender": "male", "address": [{"line": ["12 Oak Street"], "postalCode": "43210"}]}
>>> b = {"resourceType": "Patient", "id": "b", "name": [{"family": "Rivera", "given": ["Bill"]}],
...      "birthDate": "1980-04-12", "gender": "male", "address": [{"line": ["12 Oak St."], "postalCode": "43210-1234"}]}
>>> s = score_pair(a, b)
>>> s.decision, s.fields["given"].agreement, s.fields["address"].agreement
('match', 'nickname', 'exact')
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ehr_sandbox.errors import ValidationError
from synthetic.systems import NETWORK_BASE

__all__ = [
    "DEFAULT_M_PROBS",
    "DEFAULT_U_PROBS",
    "FIELDS",
    "NICKNAMES",
    "Evaluation",
    "FieldScore",
    "MasterPatientIndex",
    "MatchConfig",
    "MatchScore",
    "evaluate",
    "jaro_winkler",
    "score_pair",
    "soundex",
]

Decision = Literal["match", "review", "non-match"]

FIELDS: tuple[str, ...] = ("given", "family", "birthDate", "gender", "address", "phone")
"""The compared fields, in the order explanations list them."""

# ---------------------------------------------------------------------------------------------
# Default probabilities. m = P(level | same person), u = P(level | different people).
# They are teaching defaults in the range published MPI studies report, not fitted values; a
# course can fit its own with evaluate() on labelled pairs.
# ---------------------------------------------------------------------------------------------

DEFAULT_M_PROBS: dict[str, dict[str, float]] = {
    # Same person: the given name is usually typed the same; nicknames (Bill/William) and typos
    # account for most of the rest.
    "given": {"exact": 0.85, "nickname": 0.06, "similar": 0.05, "disagree": 0.04},
    # Family names change (marriage) or get misspelled less often than given names.
    "family": {"exact": 0.90, "similar": 0.06, "disagree": 0.04},
    # Birth dates are mostly right; the typical errors are a swapped day/month and one wrong digit.
    "birthDate": {"exact": 0.93, "transposed": 0.02, "one-digit": 0.03, "disagree": 0.02},
    # Sex is rarely mis-registered.
    "gender": {"agree": 0.98, "disagree": 0.02},
    # People move: 30% of true matches no longer share the exact address.
    "address": {"exact": 0.70, "zip": 0.10, "disagree": 0.20},
    # Phone numbers change even more often than addresses.
    "phone": {"exact": 0.60, "disagree": 0.40},
}
"""P(agreement level | same person), per field (documented inline)."""

DEFAULT_U_PROBS: dict[str, dict[str, float]] = {
    # Two strangers share a given name ~0.5% of the time (common names), a nickname group less.
    "given": {"exact": 0.005, "nickname": 0.002, "similar": 0.01, "disagree": 0.983},
    "family": {"exact": 0.002, "similar": 0.008, "disagree": 0.99},
    # ~1 in 20,000 strangers share a full birth date (about 80 birth years x 365 days).
    "birthDate": {"exact": 0.00005, "transposed": 0.00002, "one-digit": 0.001, "disagree": 0.99893},
    "gender": {"agree": 0.5, "disagree": 0.5},
    # Sharing a street address is rare between strangers; sharing a ZIP code is not.
    "address": {"exact": 0.0005, "zip": 0.02, "disagree": 0.9795},
    "phone": {"exact": 0.0001, "disagree": 0.9999},
}
"""P(agreement level | different people), per field (documented inline)."""

DEFAULT_LINK_THRESHOLD = 38.0
"""Auto-link at or above this total. All fields exact scores about 55; a true duplicate who
changed either address or phone still scores above 40; twins sharing address and phone score
about 37, just below: they go to review, not to an automatic (false) merge."""

DEFAULT_REVIEW_THRESHOLD = 20.0
"""Send to a person at or above this total. A true duplicate with a nickname, a transposed
birth date and a new address (about 21–22) still reaches review; add one more error (a new
phone or a misspelled family name) and it is missed. Unrelated people score below 0."""


# ---------------------------------------------------------------------------------------------
# Configuration and results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchConfig:
    """Fellegi–Sunter parameters: per-field m and u probabilities and the two thresholds.

    Every level in ``m_probs[field]`` needs a ``u_probs[field]`` entry; probabilities must be
    in (0, 1]. ``weights`` holds ``log2(m/u)`` per field and level, computed once.

    >>> cfg = MatchConfig()
    >>> round(cfg.weights["birthDate"]["exact"], 1), round(cfg.weights["gender"]["agree"], 2)
    (14.2, 0.97)
    >>> MatchConfig(link_threshold=10, review_threshold=20)
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: MatchConfig: review_threshold: expected a number not above link_threshold (10) (found 20)
    """

    m_probs: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_M_PROBS)
    u_probs: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_U_PROBS)
    link_threshold: float = DEFAULT_LINK_THRESHOLD
    review_threshold: float = DEFAULT_REVIEW_THRESHOLD
    weights: Mapping[str, Mapping[str, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weights: dict[str, dict[str, float]] = {}
        for name in FIELDS:
            m_levels = self.m_probs.get(name)
            u_levels = self.u_probs.get(name)
            if not isinstance(m_levels, Mapping) or not isinstance(u_levels, Mapping):
                raise ValidationError(
                    "MatchConfig",
                    f"m_probs/u_probs.{name}",
                    "a mapping of agreement level to probability",
                )
            weights[name] = {}
            for level, m in m_levels.items():
                u = u_levels.get(level)
                for which, p in (("m_probs", m), ("u_probs", u)):
                    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1:
                        raise ValidationError(
                            "MatchConfig",
                            f"{which}.{name}.{level}",
                            "a probability in (0, 1]",
                            found=p,
                        )
                weights[name][level] = math.log2(m / u)  # type: ignore[operator]
        for which in ("link_threshold", "review_threshold"):
            value = getattr(self, which)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValidationError("MatchConfig", which, "a finite number", found=value)
        if self.review_threshold > self.link_threshold:
            raise ValidationError(
                "MatchConfig",
                "review_threshold",
                f"a number not above link_threshold ({self.link_threshold:g})",
                found=self.review_threshold,
            )
        object.__setattr__(self, "weights", weights)

    def weight(self, name: str, level: str) -> float:
        """The weight of ``level`` for field ``name`` (0 for ``missing`` or an unknown level).

        >>> MatchConfig().weight("phone", "missing")
        0.0
        """
        return self.weights.get(name, {}).get(level, 0.0)

    def table(self) -> list[dict[str, Any]]:
        """One row per field and agreement level: m, u and the resulting weight (for teaching).

        >>> row = MatchConfig().table()[0]
        >>> row["field"], row["level"], row["m"], row["u"], round(row["weight"], 2)
        ('given', 'exact', 0.85, 0.005, 7.41)
        """
        return [
            {"field": name, "level": level, "m": self.m_probs[name][level], "u": self.u_probs[name][level],
             "weight": weight}
            for name in FIELDS
            for level, weight in self.weights[name].items()
        ]  # fmt: skip

    def decide(self, total: float) -> Decision:
        """``"match"``, ``"review"`` or ``"non-match"`` for a total score.

        >>> cfg = MatchConfig()
        >>> cfg.decide(cfg.link_threshold), cfg.decide(cfg.review_threshold), cfg.decide(0.0)
        ('match', 'review', 'non-match')
        """
        if total >= self.link_threshold:
            return "match"
        if total >= self.review_threshold:
            return "review"
        return "non-match"


@dataclass(frozen=True, slots=True)
class FieldScore:
    """How one field compared: its agreement level, its weight, and a short readable detail.

    >>> FieldScore("exact", 8.8, "'rivera' = 'rivera'").agreement
    'exact'
    """

    agreement: str
    weight: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MatchScore:
    """The result of comparing two patients: total weight, per-field scores, decision, reasons.

    >>> s = score_pair({"resourceType": "Patient", "gender": "female"}, {"resourceType": "Patient", "gender": "male"})
    >>> s.decision, s.fields["gender"].agreement
    ('non-match', 'disagree')
    """

    total: float
    fields: dict[str, FieldScore]
    decision: Decision
    explanation: str


# ---------------------------------------------------------------------------------------------
# String comparison (written here: no third-party matcher)
# ---------------------------------------------------------------------------------------------


def jaro_winkler(a: str, b: str, *, prefix_scale: float = 0.1) -> float:
    """Jaro–Winkler similarity in [0, 1]: 1 for equal strings, rewarding a common prefix.

    Jaro counts characters that match within a window and the transpositions among them;
    Winkler adds a bonus for up to four shared leading characters, since typos are rarer at
    the start of a name.

    >>> round(jaro_winkler("martha", "marhta"), 3), round(jaro_winkler("dixon", "dicksonx"), 3)
    (0.961, 0.813)
    >>> jaro_winkler("", "abc"), jaro_winkler("same", "same")
    (0.0, 1.0)
    """
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if la == 0 or lb == 0:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    a_hit = [False] * la
    b_hit = [False] * lb
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(lb, i + window + 1)):
            if not b_hit[j] and b[j] == ch:
                a_hit[i] = b_hit[j] = True
                matches += 1
                break
    if matches == 0:
        return 0.0
    a_seq = [ch for ch, hit in zip(a, a_hit, strict=True) if hit]
    b_seq = [ch for ch, hit in zip(b, b_hit, strict=True) if hit]
    half_transpositions = sum(x != y for x, y in zip(a_seq, b_seq, strict=True))
    jaro = (matches / la + matches / lb + (matches - half_transpositions / 2) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * prefix_scale * (1 - jaro)


_SOUNDEX_CODES = {
    ch: str(d)
    for d, letters in enumerate(("", "bfpv", "cgjkqsxz", "dt", "l", "mn", "r"))
    for ch in letters
}


def soundex(name: str) -> str:
    """American Soundex: a letter and three digits that sound-alike names share.

    Used as a blocking key, so "Smith" and "Smyth" land in the same bucket.

    >>> soundex("Robert"), soundex("Rupert"), soundex("Smyth") == soundex("Smith"), soundex("")
    ('R163', 'R163', True, '')
    """
    letters = [ch for ch in _normal(name) if ch.isalpha()]
    if not letters:
        return ""
    first = letters[0]
    out = [first.upper()]
    last = _SOUNDEX_CODES.get(first, "")
    for ch in letters[1:]:
        code = _SOUNDEX_CODES.get(ch, "")
        if code and code != last:
            out.append(code)
            if len(out) == 4:
                break
        if ch not in "hw":  # h and w do not separate equal codes; vowels do
            last = code
    return "".join(out).ljust(4, "0")


def _normal(text: str) -> str:
    """Case-folded, accents stripped, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def _name_key(text: str) -> str:
    """A name reduced to its letters: 'O'Brien-Smith' -> 'obriensmith'."""
    return "".join(ch for ch in _normal(text) if ch.isalpha())


# ---------------------------------------------------------------------------------------------
# Nicknames: each group is a formal name and the short forms registrars commonly see.
# ---------------------------------------------------------------------------------------------

_NICKNAME_GROUPS: tuple[tuple[str, ...], ...] = (
    ("william", "bill", "billy", "will", "willy", "liam"),
    ("robert", "bob", "bobby", "rob", "robbie", "bert"),
    ("richard", "rick", "ricky", "dick", "rich", "richie"),
    ("james", "jim", "jimmy", "jamie"),
    ("john", "jack", "johnny", "jon"),
    ("jonathan", "jon", "johnny", "nathan"),
    ("michael", "mike", "mikey", "mick"),
    ("joseph", "joe", "joey"),
    ("thomas", "tom", "tommy"),
    ("charles", "charlie", "chuck", "chas"),
    ("christopher", "chris", "kit"),
    ("christina", "chris", "tina", "chrissy"),
    ("christine", "chris", "tina", "chrissy"),
    ("daniel", "dan", "danny"),
    ("matthew", "matt", "matty"),
    ("anthony", "tony"),
    ("david", "dave", "davey"),
    ("steven", "steve", "stevie"),
    ("stephen", "steve", "stevie"),
    ("edward", "ed", "eddie", "ted", "ned"),
    ("theodore", "ted", "teddy", "theo"),
    ("benjamin", "ben", "benny"),
    ("samuel", "sam", "sammy"),
    ("samantha", "sam", "sammy"),
    ("nicholas", "nick", "nicky"),
    ("andrew", "andy", "drew"),
    ("timothy", "tim", "timmy"),
    ("gregory", "greg"),
    ("ronald", "ron", "ronnie"),
    ("donald", "don", "donnie"),
    ("kenneth", "ken", "kenny"),
    ("lawrence", "larry"),
    ("gerald", "jerry"),
    ("jeffrey", "jeff"),
    ("henry", "hank", "harry"),
    ("harold", "hal", "harry"),
    ("francis", "frank", "frankie"),
    ("frances", "fran", "frannie"),
    ("patrick", "pat", "paddy"),
    ("patricia", "pat", "patty", "trish", "tricia"),
    ("alexander", "alex", "al", "sasha"),
    ("alexandra", "alex", "lexi", "sandra", "sasha"),
    ("alejandro", "alex", "ale"),
    ("elizabeth", "liz", "lizzie", "beth", "betsy", "betty", "eliza", "libby"),
    ("margaret", "maggie", "meg", "peggy", "marge", "greta"),
    ("katherine", "kate", "katie", "kathy", "kat", "kay"),
    ("catherine", "cathy", "kate", "katie", "cat"),
    ("jennifer", "jen", "jenny"),
    ("jessica", "jess", "jessie"),
    ("susan", "sue", "susie"),
    ("deborah", "deb", "debbie"),
    ("rebecca", "becky", "becca"),
    ("victoria", "vicky", "tori"),
    ("kimberly", "kim"),
    ("dorothy", "dot", "dottie"),
    ("abigail", "abby", "gail"),
    ("barbara", "barb", "barbie"),
    ("cynthia", "cindy"),
    ("jacqueline", "jackie"),
    ("pamela", "pam"),
    ("stephanie", "steph"),
    ("virginia", "ginny"),
    ("jose", "pepe"),
    ("francisco", "paco", "pancho", "frank"),
    ("guadalupe", "lupe"),
    ("ignacio", "nacho"),
    ("manuel", "manny"),
    ("eduardo", "lalo", "eddie"),
    ("jesus", "chuy"),
    ("enrique", "kike", "henry"),
)

NICKNAMES: dict[str, frozenset[str]] = {}
"""Name -> the formal names it may stand for (a formal name stands for itself).

>>> sorted(NICKNAMES["alex"])
['alejandro', 'alexander', 'alexandra']
"""
for _group in _NICKNAME_GROUPS:
    for _name in _group:
        NICKNAMES[_name] = NICKNAMES.get(_name, frozenset()) | {_group[0]}


def _formal_names(name: str) -> frozenset[str]:
    return NICKNAMES.get(name, frozenset()) | {name}


# ---------------------------------------------------------------------------------------------
# Features: what a Patient contributes to matching, extracted once
# ---------------------------------------------------------------------------------------------

_STREET_WORDS = {
    "street": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "lane": "ln",
    "boulevard": "blvd", "court": "ct", "place": "pl", "circle": "cir", "terrace": "ter",
    "highway": "hwy", "parkway": "pkwy", "square": "sq", "trail": "trl", "north": "n",
    "south": "s", "east": "e", "west": "w", "northeast": "ne", "northwest": "nw",
    "southeast": "se", "southwest": "sw", "apartment": "apt", "suite": "ste", "unit": "apt",
    "number": "apt", "no": "apt",
}  # fmt: skip
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")
_NOT_DIGIT = re.compile(r"[^0-9]+")


def _address_line(lines: Iterable[Any]) -> str:
    text = _normal(" ".join(x for x in lines if isinstance(x, str))).replace("#", " apt ")
    words = _NOT_WORD.sub(" ", text).split()
    return " ".join(_STREET_WORDS.get(w, w) for w in words)


@dataclass(frozen=True, slots=True)
class _Features:
    given: str
    given_display: str
    formal: frozenset[str]
    families: tuple[str, ...]
    family_display: str
    birth: str  # "YYYY-MM-DD", "" when absent or partial
    gender: str  # "" when absent/unknown
    addresses: tuple[tuple[str, str], ...]  # (normalised line, ZIP5)
    phones: frozenset[str]

    @property
    def blocking_keys(self) -> tuple[str, ...]:
        """Keys under which a record is indexed; a candidate must share at least one.

        Several independent keys, so that one wrong field does not hide a true duplicate:
        birth year + Soundex of the family name; the birth date's digits sorted (survives a
        day/month swap and family-name changes); Soundex + ZIP3 (survives a birth-date typo).
        Phone numbers are not keys: shared household and test numbers make huge buckets.
        """
        keys = []
        sounds = {soundex(f) for f in self.families if f}
        year = self.birth[:4]
        for sound in sounds:
            if year:
                keys.append(f"ys:{year}:{sound}")
            for _, zip5 in self.addresses:
                if zip5:
                    keys.append(f"sz:{sound}:{zip5[:3]}")
        if self.birth:
            keys.append("bd:" + year + "".join(sorted(self.birth[5:7] + self.birth[8:10])))
        return tuple(dict.fromkeys(keys))


def _as_list(value: Any) -> list[Any]:
    # Demographics arrive from other organizations: tolerate any shape, use only what fits.
    return value if isinstance(value, list) else []


def _digits(value: Any) -> str:
    return _NOT_DIGIT.sub("", value) if isinstance(value, str) else ""


def _features(patient: Mapping[str, Any]) -> _Features:
    if not isinstance(patient, Mapping):
        raise ValidationError(
            "Patient", "(resource)", "a FHIR Patient as a dict", found=type(patient).__name__
        )
    names = [n for n in _as_list(patient.get("name")) if isinstance(n, Mapping)]
    names.sort(key=lambda n: n.get("use") != "official")  # official name first, if any
    given_raw = ""
    families: list[str] = []
    family_display = ""
    for n in names:
        if not given_raw:
            given = n.get("given")
            if isinstance(given, list) and given and isinstance(given[0], str):
                given_raw = given[0]
        family = n.get("family")
        if isinstance(family, str) and _name_key(family):
            families.append(_name_key(family))
            family_display = family_display or family
    given_key = _name_key(given_raw)
    birth = patient.get("birthDate")
    birth = birth if isinstance(birth, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", birth) else ""
    gender = patient.get("gender")
    gender = gender if gender in ("male", "female", "other") else ""
    addresses = []
    for addr in _as_list(patient.get("address")):
        if not isinstance(addr, Mapping):
            continue
        lines = _as_list(addr.get("line"))
        zip_digits = _digits(addr.get("postalCode"))[:5]
        line = _address_line(lines)
        if line or zip_digits:
            addresses.append((line, zip_digits))
    phones = set()
    for tel in _as_list(patient.get("telecom")):
        if isinstance(tel, Mapping) and tel.get("system") in ("phone", "sms", None):
            digits = _digits(tel.get("value"))
            if len(digits) >= 7:
                phones.add(digits[-10:])  # drop a leading country code
    return _Features(
        given=given_key,
        given_display=given_raw,
        formal=_formal_names(given_key) if given_key else frozenset(),
        families=tuple(dict.fromkeys(families)),
        family_display=family_display,
        birth=birth,
        gender=gender,
        addresses=tuple(dict.fromkeys(addresses)),
        phones=frozenset(phones),
    )


# ---------------------------------------------------------------------------------------------
# Field comparators: each returns (agreement level, readable detail)
# ---------------------------------------------------------------------------------------------

SIMILAR_NAME = 0.88
"""Jaro–Winkler similarity at or above which two differing names count as a typo ("similar")."""


def _compare_given(a: _Features, b: _Features) -> tuple[str, str]:
    if not a.given or not b.given:
        return "missing", "given name absent on one side"
    shown = f"{a.given_display!r} vs {b.given_display!r}"
    if a.given == b.given:
        return "exact", shown
    if a.formal & b.formal:
        return "nickname", shown + " (nickname table)"
    if jaro_winkler(a.given, b.given) >= SIMILAR_NAME:
        return "similar", shown + " (spelling close)"
    return "disagree", shown


def _compare_family(a: _Features, b: _Features) -> tuple[str, str]:
    if not a.families or not b.families:
        return "missing", "family name absent on one side"
    shown = f"{a.family_display!r} vs {b.family_display!r}"
    if set(a.families) & set(b.families):
        return "exact", shown
    best = max(jaro_winkler(x, y) for x in a.families for y in b.families)
    if best >= SIMILAR_NAME:
        return "similar", shown + " (spelling close)"
    return "disagree", shown


def _compare_birth(a: _Features, b: _Features) -> tuple[str, str]:
    if not a.birth or not b.birth:
        return "missing", "full birth date absent on one side"
    shown = f"{a.birth} vs {b.birth}"
    if a.birth == b.birth:
        return "exact", a.birth
    ya, ma, da = a.birth[:4], a.birth[5:7], a.birth[8:10]
    yb, mb, db = b.birth[:4], b.birth[5:7], b.birth[8:10]
    if ya == yb and ma == db and da == mb:
        return "transposed", shown + " (day and month swapped)"
    digits_a, digits_b = ya + ma + da, yb + mb + db
    diff = [i for i in range(8) if digits_a[i] != digits_b[i]]
    if len(diff) == 1 or (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and digits_a[diff[0]] == digits_b[diff[1]]
        and digits_a[diff[1]] == digits_b[diff[0]]
    ):
        return "one-digit", shown + " (one digit wrong or two neighbours swapped)"
    return "disagree", shown


def _compare_gender(a: _Features, b: _Features) -> tuple[str, str]:
    if not a.gender or not b.gender:
        return "missing", "sex absent or unknown on one side"
    if a.gender == b.gender:
        return "agree", a.gender
    return "disagree", f"{a.gender} vs {b.gender}"


def _compare_address(a: _Features, b: _Features) -> tuple[str, str]:
    if not a.addresses or not b.addresses:
        return "missing", "address absent on one side"
    best = "disagree"
    for line_a, zip_a in a.addresses:
        for line_b, zip_b in b.addresses:
            if line_a and line_a == line_b and zip_a == zip_b:
                return "exact", "same street line and ZIP"
            if zip_a and zip_a == zip_b:
                best = "zip"
    return best, "same ZIP, different street line" if best == "zip" else "different address"


def _compare_phone(a: _Features, b: _Features) -> tuple[str, str]:
    if not a.phones or not b.phones:
        return "missing", "phone absent on one side"
    if a.phones & b.phones:
        return "exact", "a phone number in common"
    return "disagree", "no phone number in common"


_COMPARATORS = {
    "given": _compare_given,
    "family": _compare_family,
    "birthDate": _compare_birth,
    "gender": _compare_gender,
    "address": _compare_address,
    "phone": _compare_phone,
}
_LABELS = {"given": "given name", "family": "family name", "birthDate": "birth date", "gender": "sex",
           "address": "address", "phone": "phone"}  # fmt: skip


def _score(a: _Features, b: _Features, config: MatchConfig) -> MatchScore:
    fields: dict[str, FieldScore] = {}
    total = 0.0
    for name in FIELDS:
        level, detail = _COMPARATORS[name](a, b)
        w = config.weight(name, level)
        fields[name] = FieldScore(level, w, detail)
        total += w
    decision = config.decide(total)
    return MatchScore(total, fields, decision, _explain(total, fields, decision, config))


def _explain(
    total: float, fields: dict[str, FieldScore], decision: Decision, config: MatchConfig
) -> str:
    verdict = {
        "match": "at or above the link threshold: linked automatically",
        "review": "between the review and link thresholds: a person must decide",
        "non-match": "below the review threshold: treated as different people",
    }[decision]
    lines = [
        f"{decision.upper()}: total {total:+.1f} ({verdict}; link at {config.link_threshold:g}, "
        f"review at {config.review_threshold:g})."
    ]
    for name in FIELDS:
        f = fields[name]
        lines.append(f"  {_LABELS[name]:<11} {f.agreement:<10} {f.weight:+6.1f}  {f.detail}")
    agreed = [_LABELS[n] for n in FIELDS if fields[n].weight > 0]
    against = [_LABELS[n] for n in FIELDS if fields[n].weight < 0]
    lines.append(
        "For: "
        + (", ".join(agreed) or "nothing")
        + ". Against: "
        + (", ".join(against) or "nothing")
        + "."
    )
    lines.append(
        "Each weight is log2(m/u): how many times (in powers of 2) more typical that agreement is "
        "of one person's two records than of two strangers'; missing values weigh 0."
    )
    return "\n".join(lines)


def score_pair(
    a: Mapping[str, Any], b: Mapping[str, Any], config: MatchConfig | None = None
) -> MatchScore:
    """Compare two FHIR Patient dicts field by field; see the module docs for the method.

    >>> twin_a = {"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["Ada"]}], "gender": "female",
    ...           "birthDate": "2015-06-01", "address": [{"line": ["4 Elm Rd"], "postalCode": "43004"}],
    ...           "telecom": [{"system": "phone", "value": "614-555-0101"}]}
    >>> twin_b = {**twin_a, "name": [{"family": "Okafor", "given": ["Obi"]}], "gender": "male"}
    >>> s = score_pair(twin_a, twin_b)
    >>> s.decision, s.fields["given"].agreement, s.fields["gender"].agreement
    ('review', 'disagree', 'disagree')
    >>> print(s.explanation.splitlines()[-2])
    For: family name, birth date, address, phone. Against: given name, sex.
    """
    return _score(_features(a), _features(b), config or MatchConfig())


# ---------------------------------------------------------------------------------------------
# Master patient index
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    ref: str
    org: str
    pid: str
    seq: int
    features: _Features
    keys: tuple[str, ...]


class MasterPatientIndex:
    """An enterprise master patient index over the Patients of several organizations.

    ``add(org, patient)`` files a Patient under ``"<org>/Patient/<id>"`` and returns its
    enterprise id (``E000001``...): the id of the best automatic match, or a new one. Pairs
    scoring in the review band are kept in :meth:`reviews` for a person to :meth:`link` or
    leave apart; :meth:`unlink` undoes a false merge. Candidates come only from shared
    blocking keys (see ``_Features.blocking_keys``), so adding is near-constant time per
    record instead of a comparison with everyone.

    >>> mpi = MasterPatientIndex()
    >>> p = {"resourceType": "Patient", "id": "1", "name": [{"family": "Lee", "given": ["Robert"]}],
    ...      "birthDate": "1970-01-02", "gender": "male", "telecom": [{"system": "phone", "value": "6145550199"}],
    ...      "address": [{"line": ["1 Main St"], "postalCode": "43210"}]}
    >>> mpi.add("clinic", p)
    'E000001'
    >>> mpi.add("hospital", {**p, "id": "H9", "name": [{"family": "Lee", "given": ["Bob"]}]})
    'E000001'
    >>> mpi.links()
    {'E000001': ['clinic/Patient/1', 'hospital/Patient/H9']}
    >>> mpi.patient_links("clinic/Patient/1")[0]["type"]
    'seealso'
    """

    def __init__(
        self,
        config: MatchConfig | None = None,
        *,
        base_url: str = NETWORK_BASE,
    ) -> None:
        self.config = config or MatchConfig()
        self.base_url = base_url.rstrip("/")
        self._entries: dict[str, _Entry] = {}
        self._eid: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}
        self._blocks: dict[str, set[str]] = defaultdict(set)
        self._reviews: dict[tuple[str, str], MatchScore] = {}
        self._next = 1
        self._seq = 0
        self.comparisons = 0
        """Pairs scored so far (blocking keeps this far below n^2/2)."""

    def __len__(self) -> int:
        return len(self._entries)

    # -- filing -------------------------------------------------------------------------------

    def add(self, source_org: str, patient: Mapping[str, Any]) -> str:
        """File ``patient`` from ``source_org``; return its enterprise id.

        Re-adding the same ``org/Patient/id`` refreshes its demographics and keeps its
        enterprise id (ids are stable; use :meth:`unlink` to split).

        >>> MasterPatientIndex().add("clinic", {"resourceType": "Patient"})
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: Patient: id: expected the Patient's id (the MPI refers to records as org/Patient/id)
        """
        ref = self._ref(source_org, patient)
        features = _features(patient)
        old = self._entries.get(ref)
        if old is not None:
            self._unindex(old)
        self._seq += 1
        entry = _Entry(
            ref, source_org, str(patient["id"]), self._seq, features, features.blocking_keys
        )
        found = self._scored(features, exclude=ref)
        if old is not None:
            eid = self._eid[ref]
        else:
            best = next(((r, s) for r, s in found if s.decision == "match"), None)
            eid = self._eid[best[0]] if best else self._new_eid()
            self._eid[ref] = eid
            self._members.setdefault(eid, []).append(ref)
        for other, score in found:
            # A review-band pair, or a second automatic match in another enterprise (ambiguous:
            # which one is the person?), goes to a person instead of being merged silently.
            if score.decision != "non-match" and self._eid[other] != eid:
                self._reviews[self._pair(ref, other)] = score
        self._entries[ref] = entry
        for key in entry.keys:
            self._blocks[key].add(ref)
        return eid

    def candidates(
        self, patient: Mapping[str, Any], *, minimum: float | None = None
    ) -> list[tuple[str, MatchScore]]:
        """Filed records that may be ``patient``: ``(ref, score)``, best first.

        Only records sharing a blocking key are scored; those below ``minimum`` (default: the
        review threshold) are left out.

        >>> mpi = MasterPatientIndex()
        >>> _ = mpi.add("clinic", {"resourceType": "Patient", "id": "1", "birthDate": "1990-03-04",
        ...                        "name": [{"family": "Diaz", "given": ["Ana"]}], "gender": "female"})
        >>> [(ref, s.decision) for ref, s in mpi.candidates({"resourceType": "Patient", "birthDate": "1990-03-04",
        ...     "name": [{"family": "Diaz", "given": ["Ana"]}], "gender": "female"})]
        [('clinic/Patient/1', 'review')]
        """
        floor = self.config.review_threshold if minimum is None else minimum
        return [(ref, s) for ref, s in self._scored(_features(patient)) if s.total >= floor]

    def _scored(
        self, features: _Features, *, exclude: str | None = None
    ) -> list[tuple[str, MatchScore]]:
        refs: set[str] = set()
        for key in features.blocking_keys:
            refs |= self._blocks.get(key, set())
        refs.discard(exclude or "")
        self.comparisons += len(refs)
        scored = [(ref, _score(features, self._entries[ref].features, self.config)) for ref in refs]
        scored.sort(key=lambda item: (-item[1].total, self._entries[item[0]].seq))
        return scored

    # -- human review -------------------------------------------------------------------------

    def reviews(self) -> list[tuple[str, str, MatchScore]]:
        """Pending pairs for a person: review-band scores, and automatic matches into a second
        enterprise (the new record matched two people), not yet in one enterprise; best first.

        >>> MasterPatientIndex().reviews()
        []
        """
        pending = [(a, b, s) for (a, b), s in self._reviews.items() if self._eid[a] != self._eid[b]]
        return sorted(pending, key=lambda item: -item[2].total)

    def link(self, ref_a: str, ref_b: str) -> str:
        """Confirm two records are one person: merge their enterprises; return the surviving id.

        The older enterprise id survives (the one created first).

        >>> mpi = MasterPatientIndex()
        >>> a = mpi.add("clinic", {"resourceType": "Patient", "id": "1"})
        >>> b = mpi.add("clinic", {"resourceType": "Patient", "id": "2"})
        >>> mpi.link("clinic/Patient/1", "clinic/Patient/2"), mpi.links()
        ('E000001', {'E000001': ['clinic/Patient/1', 'clinic/Patient/2']})
        """
        ea, eb = self._known(ref_a), self._known(ref_b)
        if ea == eb:
            return ea
        keep, gone = sorted((ea, eb))
        for ref in self._members.pop(gone):
            self._eid[ref] = keep
            self._members[keep].append(ref)
        self._members[keep].sort(key=lambda r: self._entries[r].seq)
        return keep

    def unlink(self, ref: str) -> str:
        """Take ``ref`` out of its enterprise (undo a false merge); return its new enterprise id.

        >>> mpi = MasterPatientIndex()
        >>> _ = mpi.add("clinic", {"resourceType": "Patient", "id": "1"})
        >>> mpi.unlink("clinic/Patient/1")  # already alone: keeps its id
        'E000001'
        """
        eid = self._known(ref)
        if len(self._members[eid]) == 1:
            return eid
        self._members[eid].remove(ref)
        new = self._new_eid()
        self._eid[ref] = new
        self._members[new] = [ref]
        return new

    # -- reading ------------------------------------------------------------------------------

    def enterprise_id(self, ref: str) -> str:
        """The enterprise id of a filed record (``NotFound`` style ValidationError if unknown).

        >>> mpi = MasterPatientIndex(); _ = mpi.add("ed", {"resourceType": "Patient", "id": "x"})
        >>> mpi.enterprise_id("ed/Patient/x")
        'E000001'
        """
        return self._known(ref)

    def links(self) -> dict[str, list[str]]:
        """Enterprise id -> the records filed under it (in filing order).

        >>> MasterPatientIndex().links()
        {}
        """
        return {eid: list(refs) for eid, refs in sorted(self._members.items())}

    def patient_links(self, ref: str) -> list[dict[str, Any]]:
        """The FHIR ``Patient.link`` list for the record ``ref``.

        Records of *other* organizations in the same enterprise are ``seealso`` (both stay in
        use). Two records of the *same* organization are a duplicate registration: the later
        one is ``replaced-by`` the organization's first record, which in turn ``replaces`` it.
        Same-organization references are relative (``Patient/id``); others are absolute URLs
        under ``base_url`` since they live on another server.

        >>> mpi = MasterPatientIndex()
        >>> _ = mpi.add("clinic", {"resourceType": "Patient", "id": "1"}); _ = mpi.add("clinic", {"resourceType": "Patient", "id": "2"})
        >>> _ = mpi.link("clinic/Patient/1", "clinic/Patient/2")
        >>> mpi.patient_links("clinic/Patient/2")
        [{'other': {'reference': 'Patient/1'}, 'type': 'replaced-by'}]
        """
        me = self._entries.get(ref)
        if me is None:
            self._known(ref)
        assert me is not None
        members = [self._entries[r] for r in self._members[self._eid[ref]] if r != ref]
        first_here = min((e for e in [me, *members] if e.org == me.org), key=lambda e: e.seq)
        out: list[dict[str, Any]] = []
        for other in members:
            if other.org != me.org:
                out.append(
                    {"other": {"reference": f"{self.base_url}/{other.ref}"}, "type": "seealso"}
                )
            elif me is first_here:
                out.append({"other": {"reference": f"Patient/{other.pid}"}, "type": "replaces"})
            elif other is first_here:
                out.append({"other": {"reference": f"Patient/{other.pid}"}, "type": "replaced-by"})
        return out

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _ref(source_org: str, patient: Mapping[str, Any]) -> str:
        if not isinstance(source_org, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", source_org):
            raise ValidationError(
                "MasterPatientIndex.add",
                "source_org",
                "an organization key of letters, digits, '.', '_' or '-'",
                found=source_org,
            )
        if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
            raise ValidationError(
                "MasterPatientIndex.add",
                "patient",
                "a FHIR Patient dict",
                found=type(patient).__name__,
            )
        pid = patient.get("id")
        if not isinstance(pid, str) or not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", pid):
            raise ValidationError(
                "Patient", "id", "the Patient's id (the MPI refers to records as org/Patient/id)"
            )
        return f"{source_org}/Patient/{pid}"

    def _known(self, ref: str) -> str:
        eid = self._eid.get(ref)
        if eid is None:
            raise ValidationError(
                "MasterPatientIndex",
                "ref",
                "a record filed with add() ('org/Patient/id')",
                found=ref,
            )
        return eid

    def _unindex(self, entry: _Entry) -> None:
        for key in entry.keys:
            self._blocks[key].discard(entry.ref)

    def _new_eid(self) -> str:
        eid = f"E{self._next:06d}"
        self._next += 1
        return eid

    @staticmethod
    def _pair(a: str, b: str) -> tuple[str, str]:
        return (a, b) if a < b else (b, a)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Precision, recall and F1 of the automatic decisions, with the confusion counts.

    Unpacks as ``precision, recall, f1``. Precision is 1.0 when nothing was linked (no false
    merges were made); recall is 1.0 when there were no true pairs.

    >>> precision, recall, f1 = Evaluation(tp=8, fp=2, fn=0, tn=10)
    >>> precision, recall, round(f1, 3)
    (0.8, 1.0, 0.889)
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """Share of linked pairs that are truly one person (1 - the false-merge rate).

        1.0 when nothing was linked.

        Examples
        --------
        >>> Evaluation(tp=3, fp=1, fn=0, tn=5).precision, Evaluation(tp=0, fp=0, fn=2, tn=5).precision
        (0.75, 1.0)
        """
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """Share of true pairs that were linked (1 - the missed-match rate).

        1.0 when there were no true pairs.

        Examples
        --------
        >>> Evaluation(tp=3, fp=0, fn=1, tn=5).recall, Evaluation(tp=0, fp=1, fn=0, tn=5).recall
        (0.75, 1.0)
        """
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0.0 when both are 0).

        Examples
        --------
        >>> round(Evaluation(tp=1, fp=1, fn=1, tn=0).f1, 3), Evaluation(tp=0, fp=1, fn=1, tn=0).f1
        (0.5, 0.0)
        """
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __iter__(self) -> Iterator[float]:
        return iter((self.precision, self.recall, self.f1))


def evaluate(
    pairs_with_truth: Iterable[tuple[Mapping[str, Any], Mapping[str, Any], bool]],
    config: MatchConfig | None = None,
    *,
    review_as_match: bool = False,
) -> Evaluation:
    """Score labelled pairs ``(a, b, same_person)``; count "match" decisions as links.

    With ``review_as_match=True`` the review band counts as linked too (the recall a
    reviewer could reach if they confirmed every review).

    >>> p = {"resourceType": "Patient", "name": [{"family": "Kim", "given": ["Jo"]}], "birthDate": "1999-09-09",
    ...      "gender": "female", "address": [{"line": ["9 Pine Ct"], "postalCode": "43085"}]}
    >>> q = {"resourceType": "Patient", "name": [{"family": "Ng", "given": ["Al"]}], "birthDate": "1960-01-20", "gender": "male"}
    >>> tuple(evaluate([(p, p, True), (p, q, False)]))
    (1.0, 1.0, 1.0)
    """
    cfg = config or MatchConfig()
    tp = fp = fn = tn = 0
    for a, b, truth in pairs_with_truth:
        decision = score_pair(a, b, cfg).decision
        linked = decision == "match" or (review_as_match and decision == "review")
        if linked and truth:
            tp += 1
        elif linked:
            fp += 1
        elif truth:
            fn += 1
        else:
            tn += 1
    return Evaluation(tp=tp, fp=fp, fn=fn, tn=tn)
