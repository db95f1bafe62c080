"""azure-keyvault-secrets SecretClient with DefaultAzureCredential:
python3 keyvault.py full | read (KEYVAULT_URL, SECRET_NAME)."""

import os
import sys
import time

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from harness import expect_error, need, run

mode = sys.argv[1]
client = SecretClient(need("KEYVAULT_URL"), DefaultAzureCredential())
NAME = "py-secret"


def view(s):
    p = s.properties if hasattr(s, "properties") else s
    out = {
        "name": p.name, "version": p.version, "id": p.id, "enabled": p.enabled,
        "contentType": p.content_type, "tags": p.tags or {}, "recoveryLevel": p.recovery_level,
    }
    if hasattr(s, "value"):
        out["value"] = s.value
    for attr in ("recovery_id", "scheduled_purge_date", "deleted_date"):
        if getattr(s, attr, None) is not None:
            out[attr] = getattr(s, attr)
    return out


def wait_until(fn):
    """Retries fn while the vault says the secret is still being deleted or
    recovered (the SDK's pollers finish before a purge is allowed)."""
    for _ in range(50):
        try:
            return fn()
        except HttpResponseError as err:
            if err.status_code != 409:
                raise
            time.sleep(0.1)
    return fn()


if mode == "read":
    run([("get", lambda _: view(client.get_secret(need("SECRET_NAME"))))])
    sys.exit(0)

steps = [
    ("set", lambda _: view(client.set_secret(NAME, "py-value-one", content_type="text/plain", tags={"env": "ci"}))),
    ("set-again", lambda _: view(client.set_secret(NAME, "py-value-two"))),
    ("get", lambda _: view(client.get_secret(NAME))),
    ("get-version", lambda r: view(client.get_secret(NAME, r["set"]["value"]["version"]))),
    ("versions", lambda _: sorted(p.version for p in client.list_properties_of_secret_versions(NAME))),
    ("list", lambda _: [p.name for p in client.list_properties_of_secrets()]),
    ("update", lambda r: view(client.update_secret_properties(NAME, r["set"]["value"]["version"], enabled=False, tags={"rotated": "yes"}))),
    ("get-disabled", lambda r: expect_error(lambda: client.get_secret(NAME, r["set"]["value"]["version"]))),
    ("backup", lambda _: len(client.backup_secret(NAME))),
    ("delete", lambda _: view(client.begin_delete_secret(NAME).result())),
    ("list-deleted", lambda _: [s.name for s in client.list_deleted_secrets()]),
    ("get-deleted-live", lambda _: expect_error(lambda: client.get_secret(NAME))),
    ("recover", lambda _: view(client.begin_recover_deleted_secret(NAME).result())),
    ("get-recovered", lambda _: view(wait_until(lambda: client.get_secret(NAME)))),
]
backup = {}


def backup_and_purge(_):
    backup["blob"] = client.backup_secret(NAME)
    client.begin_delete_secret(NAME).wait()
    wait_until(lambda: client.purge_deleted_secret(NAME))
    return len(backup["blob"])


steps += [
    ("purge", backup_and_purge),
    ("restore", lambda _: view(wait_until(lambda: client.restore_secret_backup(backup["blob"])))),
    ("missing", lambda _: expect_error(lambda: client.get_secret("py-no-such-secret"))),
    ("bad-name", lambda _: expect_error(lambda: client.set_secret("bad_name!", "x"))),
]
run(steps)
