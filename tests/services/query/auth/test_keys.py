"""The key index: by hash and by id in O(1), revocation at once, legacy project hashes honoured."""

import msgspec

from services.query.auth.keys import KeyIndex, ProjectsView
from shared.events import ApiKey, ProjectConfig, encode
from shared.ids import hash_api_key
from tests.services.query.auth.conftest import TOPICS


async def test_it_finds_a_key_by_its_secret_and_by_its_id(accounts):
    project = await accounts.create_project("ops")
    key, secret = await accounts.create_key(project.id, "deploys", read_only=True)
    assert accounts.keys.find(secret) == key
    assert accounts.keys.get(key.id) == key
    assert key.key_hash == hash_api_key(secret) and secret not in encode(key).decode()
    assert accounts.keys.find(secret + "x") is None
    assert accounts.keys.find("pk_\udcff") is None  # undecodable header bytes


async def test_a_revoked_key_is_refused_at_once_and_leaves_its_project_listing(accounts):
    project = await accounts.create_project("ops")
    key, secret = await accounts.create_key(project.id, "old")
    other, _ = await accounts.create_key(project.id, "new")
    await accounts.revoke_key(key)
    assert accounts.keys.find(secret) is None and accounts.keys.get(key.id) is None
    assert accounts.keys.of_project(project.id) == [other]


async def test_a_stale_copy_from_the_topic_does_not_bring_a_revoked_key_back(accounts):
    project = await accounts.create_project("ops")
    key, secret = await accounts.create_key(project.id, "k")
    await accounts.revoke_key(key)
    accounts.keys.put(key)  # revision 1 arriving after the revocation (revision 2)
    assert accounts.keys.find(secret) is None


async def test_a_fresh_index_rebuilds_every_key_from_the_topic(accounts):
    project = await accounts.create_project("ops")
    kept, kept_secret = await accounts.create_key(project.id, "kept")
    gone, gone_secret = await accounts.create_key(project.id, "gone")
    await accounts.revoke_key(gone)
    projects = ProjectsView(accounts.bus, TOPICS.projects)
    await projects.start()
    keys = KeyIndex(accounts.bus, TOPICS.keys, projects)
    await keys.start()
    try:
        assert keys.find(kept_secret) == kept and keys.find(gone_secret) is None
        assert keys.of_project(project.id) == [kept]
    finally:
        await keys.close()
        await projects.close()


async def test_a_key_published_by_another_process_is_found_by_syncing_first(accounts):
    project = await accounts.create_project("ops")
    key = ApiKey(
        id="key_cli", project_id=project.id, name="cli", key_hash=hash_api_key("pk_from_cli"), created_ms=1
    )
    await accounts.bus.publish(TOPICS.keys, key.id, encode(key))  # not put into this index
    assert await accounts.keys.resolve("pk_from_cli") == key


async def test_legacy_project_hashes_are_read_write_keys_found_by_hash_and_by_id(accounts):
    project = ProjectConfig(
        id="prj_old", name="old", api_key_hashes=[hash_api_key("pk_legacy")], created_ms=5
    )
    accounts.projects.put(project)
    key = accounts.keys.find("pk_legacy")
    assert key is not None and key.project_id == "prj_old" and not key.read_only
    assert accounts.keys.get(key.id) == key
    assert accounts.keys.of_project("prj_old") == [key]


async def test_a_legacy_key_can_be_revoked_without_rewriting_its_project(accounts):
    accounts.projects.put(
        ProjectConfig(id="prj_old", name="old", api_key_hashes=[hash_api_key("pk_legacy")], created_ms=5)
    )
    await accounts.revoke_key(accounts.keys.find("pk_legacy"))
    assert accounts.keys.find("pk_legacy") is None
    assert accounts.keys.of_project("prj_old") == []
    assert accounts.projects["prj_old"].api_key_hashes == [hash_api_key("pk_legacy")]


async def test_a_legacy_hash_removed_from_its_project_is_no_longer_a_key(accounts):
    project = ProjectConfig(
        id="prj_old", name="old", api_key_hashes=[hash_api_key("pk_legacy")], created_ms=5
    )
    accounts.projects.put(project)
    accounts.projects.put(msgspec.structs.replace(project, api_key_hashes=[]))
    assert accounts.keys.find("pk_legacy") is None


async def test_lookups_do_not_scan_projects(accounts):
    for n in range(2000):
        accounts.projects.put(ProjectConfig(id=f"prj_{n}", name=str(n), created_ms=n))
    project = await accounts.create_project("last")
    _, secret = await accounts.create_key(project.id, "k")
    accounts.projects.values = None  # a scan would call this
    assert accounts.keys.find(secret).project_id == project.id
    assert accounts.keys.find("pk_unknown") is None


async def test_projects_are_found_by_name_and_the_admin_project_is_the_oldest_admin(accounts):
    accounts.projects.put(ProjectConfig(id="prj_b", name="ops", admin=True, created_ms=2))
    accounts.projects.put(ProjectConfig(id="prj_a", name="ops", admin=True, created_ms=1))
    assert accounts.projects.named("ops").id == "prj_a"
    assert accounts.projects.admin().id == "prj_a"
    assert accounts.projects.named("nobody") is None
