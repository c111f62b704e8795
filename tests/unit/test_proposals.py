"""Proposals against a small catalog: the rules, with exact messages, and auto-allocation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.base_answers import BASE
from tests.unit.small_catalog import catalog_files, write_catalog
from wizard.answers import Answers
from wizard.answers.proposals import AllocationError, allocate, assignments, check
from wizard.base.problems import format_loc
from wizard.base.yamlfile import parse_document
from wizard.catalog import Catalog, load_catalog

VALID = """\
barclamps:
  alpha:
    roles:
      alpha-server: [admin]
  beta:
    attributes:
      password: env:BETA_PASSWORD
    roles:
      beta-api: [ctl-1]
      beta-worker: [compute-1]
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return load_catalog(write_catalog(tmp_path_factory.mktemp("catalog"), catalog_files()))


def answers_with(barclamps: str, nodes: str | None = None) -> Answers:
    head, _, rest = BASE.partition("barclamps:\n")
    _, _, node_text = rest.partition("nodes:\n")
    text = head + barclamps + "nodes:\n" + (nodes if nodes is not None else node_text)
    return Answers.model_validate(parse_document(text.encode(), "t.yaml").data)


def findings(answers: Answers, catalog: Catalog, complete: bool = True) -> list[tuple[str, str]]:
    return [(format_loc(f.loc), f.message) for f in check(answers, catalog, complete=complete)]


def test_valid_proposals(catalog: Catalog) -> None:
    answers = answers_with(VALID)
    assert findings(answers, catalog) == []
    placed = assignments(answers, catalog)
    assert list(placed) == ["alpha", "beta"]
    assert placed["alpha"] == {"alpha-server": ["admin"], "alpha-client": ["ctl-1", "compute-1"]}


def test_an_all_nodes_role_that_allows_the_admin_node_goes_there_too(
        tmp_path: Path) -> None:
    """As deployer-client does: the admin node is a Chef node too, first in the list (as
    it is in the barclamps screen), unless it holds a conflicting role."""
    files = catalog_files()
    files["alpha/barclamp.yaml"] = files["alpha/barclamp.yaml"].replace(
        "    all_nodes: true\n", "    all_nodes: true\n    admin: allowed\n")
    catalog = load_catalog(write_catalog(tmp_path / "conflicting", files))
    answers = answers_with(VALID)
    assert findings(answers, catalog) == []
    assert assignments(answers, catalog)["alpha"]["alpha-client"] == ["ctl-1", "compute-1"]
    files["alpha/barclamp.yaml"] = files["alpha/barclamp.yaml"].replace(
        "    conflicts: [alpha-server]\n", "")
    catalog = load_catalog(write_catalog(tmp_path / "free", files))
    assert findings(answers, catalog) == []
    assert assignments(answers, catalog)["alpha"]["alpha-client"] == [
        "admin", "ctl-1", "compute-1"]


CASES = [
    ("unknown-barclamp", "  beta:\n", "  betta: {}\n  beta:\n",
     [("barclamps.betta", "unknown barclamp 'betta' (did you mean 'beta'?)")]),
    ("unknown-attribute", "      password:", "      mod: fast\n      password:",
     [("barclamps.beta.attributes.mod", "beta has no attribute 'mod' (did you mean 'mode'?)")]),
    ("attribute-type", "  alpha:\n", "  alpha:\n    attributes: {port: '80'}\n",
     [("barclamps.alpha.attributes.port", "alpha attribute port: expected an integer")]),
    ("attribute-enum", "      password:", "      mode: slow\n      password:",
     [("barclamps.beta.attributes.mode", "beta attribute mode: must be one of fast, safe")]),
    ("attribute-range", "  alpha:\n", "  alpha:\n    attributes: {port: 0}\n",
     [("barclamps.alpha.attributes.port", "alpha attribute port: must be at least 1")]),
    ("inline-secret", "password: env:BETA_PASSWORD", "password: hunter2",
     [("barclamps.beta.attributes.password",
       "beta attribute password: a secret attribute is a reference: write env:NAME or "
       "file:PATH")]),
    ("bad-secret-reference", "password: env:BETA_PASSWORD", "password: \"env:X'; reboot\"",
     [("barclamps.beta.attributes.password",
       "beta attribute password: \"env:X'; reboot\" does not name an environment variable")]),
    ("required-attribute", "    attributes:\n      password: env:BETA_PASSWORD\n", "",
     [("barclamps.beta", "beta attribute password is required: Beta's service password.")]),
    ("unknown-role", "      beta-api: [ctl-1]\n", "      beta-apy: [ctl-1]\n",
     [("barclamps.beta.roles.beta-apy",
       "beta has no role 'beta-apy' (roles: beta-api, beta-worker)"),
      ("barclamps.beta.roles", "beta role beta-api needs at least 1 node, 0 assigned")]),
    ("all-nodes-role-listed", "      alpha-server: [admin]\n",
     "      alpha-server: [admin]\n      alpha-client: [ctl-1]\n",
     [("barclamps.alpha.roles.alpha-client",
       "alpha-client goes on every node by itself: remove this list")]),
    ("role-on-admin", "beta-api: [ctl-1]", "beta-api: [admin]",
     [("barclamps.beta.roles.beta-api[0]", "beta-api cannot be placed on the admin node")]),
    ("too-many", "beta-api: [ctl-1]", "beta-api: [ctl-1, compute-1]",
     [("barclamps.beta.roles.beta-api", "beta role beta-api accepts at most 1 node, 2 assigned"),
      ("barclamps.beta.roles.beta-worker[0]",
       "node compute-1 holds both beta-api (beta) and beta-worker (beta), which conflict")]),
    ("too-few", "beta-worker: [compute-1]", "beta-worker: []",
     [("barclamps.beta.roles.beta-worker",
       "beta role beta-worker needs at least 1 node, 0 assigned")]),
    ("too-many-servers", "alpha-server: [admin]", "alpha-server: [admin, ctl-1]",
     [("barclamps.alpha.roles.alpha-server",
       "alpha role alpha-server accepts at most 1 node, 2 assigned")]),
    ("missing-required-barclamp", "  alpha:\n    roles:\n      alpha-server: [admin]\n", "",
     [("barclamps.beta", "beta requires alpha, which is not selected: add 'alpha: {}' under "
       "barclamps, or run `crowbar-wizard allocate FILE`")]),
    ("conflict", "beta-worker: [compute-1]", "beta-worker: [compute-1, ctl-1]",
     [("barclamps.beta.roles.beta-worker[1]",
       "node ctl-1 holds both beta-api (beta) and beta-worker (beta), which conflict")]),
    ("listed-twice", "beta-worker: [compute-1]", "beta-worker: [compute-1, compute-1]",
     [("barclamps.beta.roles.beta-worker[1]", "beta-worker: node 'compute-1' is listed twice")]),
    ("node-not-in-inventory", "beta-worker: [compute-1]", "beta-worker: [compute-9]",
     [("barclamps.beta.roles.beta-worker[0]", "beta-worker: node 'compute-9' is not in nodes")]),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_broken_proposal(catalog: Catalog, old: str, new: str, expected: list) -> None:
    assert VALID.count(old) == 1
    assert findings(answers_with(VALID.replace(old, new)), catalog) == expected


@pytest.mark.parametrize(
    ("hardware", "message"),
    [
        ("{cpu_cores: 8, memory_gb: 8}", "8 GB memory, needs 16"),
        ("{cpu_cores: 8, memory_gb: 64, virtualization: false}", "no hardware virtualization"),
    ],
)
def test_node_lacking_hardware(catalog: Catalog, hardware: str, message: str) -> None:
    nodes = BASE.partition("nodes:\n")[2].replace(
        "    addresses:\n", f"    hardware: {hardware}\n    addresses:\n")
    assert findings(answers_with(VALID, nodes), catalog) == [
        ("barclamps.beta.roles.beta-worker[0]",
         f"node compute-1 cannot hold beta-worker (beta): {message}")
    ]


def test_incomplete_proposals_are_fine_before_allocation(catalog: Catalog) -> None:
    answers = answers_with("barclamps:\n  beta:\n    attributes: {password: env:X}\n")
    assert [m for _, m in findings(answers, catalog)] == [
        "beta requires alpha, which is not selected: add 'alpha: {}' under barclamps, or run "
        "`crowbar-wizard allocate FILE`",
        "beta role beta-api needs at least 1 node, 0 assigned",
        "beta role beta-worker needs at least 1 node, 0 assigned",
    ]
    assert findings(answers, catalog, complete=False) == []


FLEET = """\
  - {name: c1, macs: ['52:54:00:00:00:01'], roles: [controller],
     hardware: {cpu_cores: 8, memory_gb: 32}}
  - {name: c2, macs: ['52:54:00:00:00:02'], roles: [controller],
     hardware: {cpu_cores: 8, memory_gb: 32}}
  - {name: w1, macs: ['52:54:00:00:00:03'], roles: [compute],
     hardware: {cpu_cores: 32, memory_gb: 128}}
  - {name: w2, macs: ['52:54:00:00:00:04'], roles: [compute],
     hardware: {cpu_cores: 32, memory_gb: 512}}
  - {name: w3, macs: ['52:54:00:00:00:05'], roles: [compute],
     hardware: {cpu_cores: 32, memory_gb: 256, virtualization: false}}
"""


def test_allocate_places_every_role_with_reasons(catalog: Catalog) -> None:
    answers = answers_with("barclamps:\n  beta:\n    attributes: {password: env:X}\n", FLEET)
    result, placements = allocate(answers, catalog)
    assert findings(result, catalog) == []
    assert [str(p) for p in placements] == [
        "admin <- alpha-server (alpha): runs on the admin node",
        "c1 <- beta-api (beta): meant as controller; held 0 other roles, fewest first",
        "w2 <- beta-worker (beta): meant as compute; has virtualization; 512 GB memory, most "
        "first",
        "w1 <- beta-worker (beta): meant as compute; has virtualization; 128 GB memory, most "
        "first",
    ]
    assert result.barclamps["beta"].roles == {"beta-api": ["c1"], "beta-worker": ["w2", "w1"]}
    assert "alpha" not in answers.barclamps  # the input is left as it was
    again, more = allocate(result, catalog)
    assert more == [] and again.barclamps == result.barclamps


def test_allocate_keeps_what_the_operator_chose(catalog: Catalog) -> None:
    chosen = "barclamps:\n  beta:\n    attributes: {password: env:X}\n    roles:\n" \
             "      beta-api: [c2]\n"
    result, _ = allocate(answers_with(chosen, FLEET), catalog)
    assert result.barclamps["beta"].roles["beta-api"] == ["c2"]


def test_allocate_explains_what_cannot_be_placed(catalog: Catalog) -> None:
    fleet = FLEET
    for memory in ("32", "128", "512"):
        fleet = fleet.replace(f"memory_gb: {memory}", "memory_gb: 8")
    answers = answers_with("barclamps:\n  beta:\n    attributes: {password: env:X}\n", fleet)
    with pytest.raises(AllocationError) as caught:
        allocate(answers, catalog)
    assert caught.value.reasons == [
        "beta role beta-worker needs 1 node, 0 can take it: c1: conflicts with beta-api; "
        "c2: 8 GB memory, needs 16; w1: 8 GB memory, needs 16; w2: 8 GB memory, needs 16; "
        "w3: no hardware virtualization"
    ]
