"""azure-mgmt-cognitiveservices, azure-mgmt-authorization, azure-mgmt-msi and
azure-mgmt-resource against the management API: python3 management.py (AZURE_SUBSCRIPTION_ID,
ARM_ENDPOINT, RESOURCE_GROUP and the environment's credential)."""

import uuid

from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import (Account, AccountProperties, Deployment, DeploymentModel,
                                                 DeploymentProperties, DeploymentScaleSettings, IpRule,
                                                 NetworkRuleSet, Sku)
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource import ResourceManagementClient

from harness import expect_error, need, run

sub, group = need("AZURE_SUBSCRIPTION_ID"), need("RESOURCE_GROUP")
kw = {"base_url": need("ARM_ENDPOINT"), "credential_scopes": ["https://management.azure.com/.default"]}
cred = DefaultAzureCredential()
cs = CognitiveServicesManagementClient(cred, sub, **kw)
auth = AuthorizationManagementClient(cred, sub, **kw)
msi = ManagedServiceIdentityClient(cred, sub, **kw)
arm = ResourceManagementClient(cred, sub, **kw)
NAME = "py-language"
state = {}


def create(_):
    a = cs.accounts.begin_create(group, NAME, Account(kind="TextAnalytics", location="westus", sku=Sku(name="S0"), tags={"from": "python"})).result()
    return {"id": a.id, "endpoint": a.properties.endpoint, "state": a.properties.provisioning_state, "tags": a.tags}


def keys(_):
    k = cs.accounts.list_keys(group, NAME)
    state["keys"] = k
    return {"key1": k.key1, "key2": k.key2}


def regenerate(_):
    k = cs.accounts.regenerate_key(group, NAME, "Key2")
    return {"key1Kept": k.key1 == state["keys"].key1, "key2Changed": k.key2 != state["keys"].key2}


def identity(_):
    mi = msi.user_assigned_identities.create_or_update(group, "py-identity", {"location": "westus"})
    state["mi"] = mi
    return {"clientId": mi.client_id, "principalId": mi.principal_id}


def assign(r):
    role = next(iter(auth.role_definitions.list("/subscriptions/" + sub, filter="roleName eq 'Cognitive Services User'")))
    ra = auth.role_assignments.create(r["create"]["value"]["id"], str(uuid.uuid4()), RoleAssignmentCreateParameters(
        role_definition_id=role.id, principal_id=state["mi"].principal_id, principal_type="ServicePrincipal"))
    return {"role": role.name, "scope": ra.scope, "principal": ra.principal_id}


def network_rules(_):
    rules = NetworkRuleSet(default_action="Deny", ip_rules=[IpRule(value="10.20.0.0/16"), IpRule(value="203.0.113.7")])
    a = cs.accounts.begin_update(group, NAME, Account(properties=AccountProperties(network_acls=rules))).result()
    got = cs.accounts.get(group, NAME).properties.network_acls
    return {"updated": a.properties.network_acls.default_action, "defaultAction": got.default_action,
            "ipRules": [r.value for r in got.ip_rules]}


def show_deleted(_):
    a = cs.deleted_accounts.get("westus", group, NAME)
    return {"id": a.id, "deletionDate": a.properties.deletion_date, "scheduledPurgeDate": a.properties.scheduled_purge_date}


def recover(_):
    a = cs.accounts.begin_create(group, NAME, Account(location="westus", properties=AccountProperties(restore=True))).result()
    k = cs.accounts.list_keys(group, NAME)
    return {"name": a.name, "kind": a.kind, "key1": k.key1 == state["keys"].key1}


def outbound(_):
    """Data loss prevention on the OpenAI account: restricted to listed hosts."""
    props = AccountProperties(restrict_outbound_network_access=True, allowed_fqdn_list=["VLLM.internal", "10.0.0.5"])
    cs.accounts.begin_update(group, "py-openai", Account(properties=props)).result()
    got = cs.accounts.get(group, "py-openai").properties
    return {"restrict": got.restrict_outbound_network_access, "allowed": got.allowed_fqdn_list}


def deploy(_):
    """An OpenAI account and a deployment of a model of the server's
    catalog, by name alone (no upstream: the Azure way)."""
    cs.accounts.begin_create(group, "py-openai", Account(kind="OpenAI", location="westus", sku=Sku(name="S0"))).result()
    models = [(m.name, m.version) for m in cs.accounts.list_models(group, "py-openai")]
    # This SDK's API version (2022-12-01) has no deployment sku: the
    # capacity is in scaleSettings.
    d = cs.deployments.begin_create_or_update(group, "py-openai", "py-mini", Deployment(properties=DeploymentProperties(
        model=DeploymentModel(format="OpenAI", name="gpt-4o-mini"),
        scale_settings=DeploymentScaleSettings(scale_type="Manual", capacity=2)))).result()
    got = cs.deployments.get(group, "py-openai", "py-mini")
    return {"models": models, "version": d.properties.model.version, "capacity": got.properties.scale_settings.capacity,
            "state": got.properties.provisioning_state, "names": [x.name for x in cs.deployments.list(group, "py-openai")]}


steps = [
    ("create", create),
    ("get", lambda _: cs.accounts.get(group, NAME).kind),
    ("list", lambda _: [a.name for a in cs.accounts.list_by_resource_group(group)]),
    ("keys", keys),
    ("regenerate", regenerate),
    ("skus", lambda _: sorted({s.name for s in cs.resource_skus.list()})),
    ("deleted-accounts", lambda _: [a.name for a in cs.deleted_accounts.list()]),
    ("identity", identity),
    ("assign", assign),
    ("assignments", lambda r: [a.principal_id for a in auth.role_assignments.list_for_scope(r["create"]["value"]["id"])]),
    ("bad-key-name", lambda _: expect_error(lambda: cs.accounts.regenerate_key(group, NAME, "Key3"))),
    # What the server's own lists (resource_skus, locations, providers) do not have is refused.
    ("sku-unknown", lambda _: expect_error(lambda: cs.accounts.begin_create(group, "py-zz9", Account(
        kind="TextAnalytics", location="westus", sku=Sku(name="ZZ9"))).result())),
    ("location-unknown", lambda _: expect_error(lambda: cs.accounts.begin_create(group, "py-mars", Account(
        kind="TextAnalytics", location="mars", sku=Sku(name="S0"))).result())),
    ("provider-unknown", lambda _: expect_error(lambda: arm.providers.get("Microsoft.Nope"))),
    ("network-rules", network_rules),
    ("bad-network-rule", lambda _: expect_error(lambda: cs.accounts.begin_update(group, NAME, Account(properties=AccountProperties(
        network_acls=NetworkRuleSet(default_action="Deny", ip_rules=[IpRule(value="10.0.0.0/33")])))).result())),
    ("delete", lambda _: cs.accounts.begin_delete(group, NAME).result()),
    ("get-deleted", lambda _: expect_error(lambda: cs.accounts.get(group, NAME))),
    # Soft delete: listed and read as a deleted account, recovered with its
    # keys by a create with restore, deleted again and purged.
    ("deleted-after", lambda _: [a.name for a in cs.deleted_accounts.list()]),
    ("show-deleted", show_deleted),
    ("recover", recover),
    ("delete-again", lambda _: cs.accounts.begin_delete(group, NAME).result()),
    ("purge", lambda _: cs.deleted_accounts.begin_purge("westus", group, NAME).result()),
    ("purged", lambda _: expect_error(lambda: cs.deleted_accounts.get("westus", group, NAME))),
    ("deploy", deploy),
    ("deploy-unknown-model", lambda _: expect_error(lambda: cs.deployments.begin_create_or_update(group, "py-openai", "py-x", Deployment(
        properties=DeploymentProperties(model=DeploymentModel(format="OpenAI", name="gpt-5")))).result())),
    ("undeploy", lambda _: cs.deployments.begin_delete(group, "py-openai", "py-mini").result()),
    ("outbound", outbound),
    ("outbound-bad-host", lambda _: expect_error(lambda: cs.accounts.begin_update(group, "py-openai", Account(properties=AccountProperties(
        restrict_outbound_network_access=True, allowed_fqdn_list=["https://x.example"]))).result())),
]
run(steps)
