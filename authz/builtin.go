package authz

// Built-in role definitions, with Azure's own GUIDs, names, descriptions and
// permission lists, copied from Microsoft's published built-in role
// reference (role-based-access-control/built-in-roles: privileged, general,
// ai-machine-learning, security, identity; checked May 2025). Keep them
// byte-for-byte: clients compare role ids, and people read the lists to
// decide what to assign.
//
// Note that Cognitive Services User really does include
// Microsoft.CognitiveServices/accounts/listkeys/action in Azure; the roles
// without key access are Cognitive Services OpenAI User and OpenAI
// Contributor.
var builtinRoles = []*RoleDefinition{
	{
		ID: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", RoleName: "Owner",
		Description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
		Permissions: []Permission{{Actions: []string{"*"}}},
	},
	{
		ID: "b24988ac-6180-42a0-ab88-20f7382dd24c", RoleName: "Contributor",
		Description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
		Permissions: []Permission{{
			Actions: []string{"*"},
			NotActions: []string{
				"Microsoft.Authorization/*/Delete",
				"Microsoft.Authorization/*/Write",
				"Microsoft.Authorization/elevateAccess/Action",
				"Microsoft.Blueprint/blueprintAssignments/write",
				"Microsoft.Blueprint/blueprintAssignments/delete",
				"Microsoft.Compute/galleries/share/action",
				"Microsoft.Purview/consents/write",
				"Microsoft.Purview/consents/delete",
				"Microsoft.Resources/deploymentStacks/manageDenySetting/action",
				"Microsoft.Subscription/cancel/action",
				"Microsoft.Subscription/enable/action",
			},
		}},
	},
	{
		ID: "acdd72a7-3385-48ef-bd42-f606fba81ae7", RoleName: "Reader",
		Description: "View all resources, but does not allow you to make any changes.",
		Permissions: []Permission{{Actions: []string{"*/read"}}},
	},
	{
		ID: "4a9ae827-6dc8-4573-8ac7-8239d42aa03f", RoleName: "Tag Contributor",
		Description: "Lets you manage tags on entities, without providing access to the entities themselves.",
		Permissions: []Permission{{Actions: []string{
			"Microsoft.Authorization/*/read",
			"Microsoft.Resources/subscriptions/resourceGroups/read",
			"Microsoft.Resources/subscriptions/resourceGroups/resources/read",
			"Microsoft.Resources/subscriptions/resources/read",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Insights/alertRules/*",
			"Microsoft.Support/*",
			"Microsoft.Resources/tags/*",
		}}},
	},
	{
		ID: "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", RoleName: "User Access Administrator",
		Description: "Lets you manage user access to Azure resources.",
		Permissions: []Permission{{Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}}},
	},
	{
		ID: "f58310d9-a9f6-439a-9e8d-f62e7b41a168", RoleName: "Role Based Access Control Administrator",
		Description: "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
		Permissions: []Permission{{Actions: []string{
			"Microsoft.Authorization/roleAssignments/write",
			"Microsoft.Authorization/roleAssignments/delete",
			"*/read",
			"Microsoft.Support/*",
		}}},
	},
	{
		ID: "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68", RoleName: "Cognitive Services Contributor",
		Description: "Lets you create, read, update, delete and manage keys of Cognitive Services.",
		Permissions: []Permission{{Actions: []string{
			"Microsoft.Authorization/*/read",
			"Microsoft.CognitiveServices/*",
			"Microsoft.Features/features/read",
			"Microsoft.Features/providers/features/read",
			"Microsoft.Features/providers/features/register/action",
			"Microsoft.Insights/alertRules/*",
			"Microsoft.Insights/diagnosticSettings/*",
			"Microsoft.Insights/logDefinitions/read",
			"Microsoft.Insights/metricdefinitions/read",
			"Microsoft.Insights/metrics/read",
			"Microsoft.ResourceHealth/availabilityStatuses/read",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Resources/deployments/operations/read",
			"Microsoft.Resources/subscriptions/operationresults/read",
			"Microsoft.Resources/subscriptions/read",
			"Microsoft.Resources/subscriptions/resourcegroups/deployments/*",
			"Microsoft.Resources/subscriptions/resourceGroups/read",
			"Microsoft.Support/*",
		}}},
	},
	{
		ID: "a97b65f3-24c7-4388-baec-2e87135dc908", RoleName: "Cognitive Services User",
		Description: "Lets you read and list keys of Cognitive Services.",
		Permissions: []Permission{{
			Actions: []string{
				"Microsoft.CognitiveServices/*/read",
				"Microsoft.CognitiveServices/accounts/listkeys/action",
				"Microsoft.Insights/alertRules/read",
				"Microsoft.Insights/diagnosticSettings/read",
				"Microsoft.Insights/logDefinitions/read",
				"Microsoft.Insights/metricdefinitions/read",
				"Microsoft.Insights/metrics/read",
				"Microsoft.ResourceHealth/availabilityStatuses/read",
				"Microsoft.Resources/deployments/operations/read",
				"Microsoft.Resources/subscriptions/operationresults/read",
				"Microsoft.Resources/subscriptions/read",
				"Microsoft.Resources/subscriptions/resourceGroups/read",
				"Microsoft.Support/*",
			},
			DataActions: []string{"Microsoft.CognitiveServices/*"},
		}},
	},
	{
		ID: "bba48692-92b0-4667-a9ad-c31c7b334ac2", RoleName: "Cognitive Services Usages Reader",
		Description: "Minimal permission to view Cognitive Services usages.",
		Permissions: []Permission{{Actions: []string{"Microsoft.CognitiveServices/locations/usages/read"}}},
	},
	{
		ID: "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", RoleName: "Cognitive Services OpenAI User",
		Description: "Ability to view files, models, deployments. Readers can't make any changes They can inference and create images",
		Permissions: []Permission{{
			Actions: []string{
				"Microsoft.CognitiveServices/*/read",
				"Microsoft.Authorization/roleAssignments/read",
				"Microsoft.Authorization/roleDefinitions/read",
			},
			DataActions: []string{
				"Microsoft.CognitiveServices/accounts/OpenAI/*/read",
				"Microsoft.CognitiveServices/accounts/OpenAI/engines/completions/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/engines/search/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/engines/generate/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/deployments/audio/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/deployments/search/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/deployments/completions/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/deployments/realtime/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/deployments/extensions/chat/completions/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/images/generations/action",
				"Microsoft.CognitiveServices/accounts/OpenAI/assistants/*",
				"Microsoft.CognitiveServices/accounts/OpenAI/responses/*",
			},
			NotDataActions: []string{"Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read"},
		}},
	},
	{
		ID: "a001fd3d-188f-4b5d-821b-7da978bf7442", RoleName: "Cognitive Services OpenAI Contributor",
		Description: "Full access including the ability to fine-tune, deploy and generate text",
		Permissions: []Permission{{
			Actions: []string{
				"Microsoft.CognitiveServices/*/read",
				"Microsoft.CognitiveServices/accounts/deployments/write",
				"Microsoft.CognitiveServices/accounts/deployments/delete",
				"Microsoft.CognitiveServices/accounts/raiPolicies/read",
				"Microsoft.CognitiveServices/accounts/raiPolicies/write",
				"Microsoft.CognitiveServices/accounts/raiPolicies/delete",
				"Microsoft.CognitiveServices/accounts/commitmentplans/read",
				"Microsoft.CognitiveServices/accounts/commitmentplans/write",
				"Microsoft.CognitiveServices/accounts/commitmentplans/delete",
				"Microsoft.Authorization/roleAssignments/read",
				"Microsoft.Authorization/roleDefinitions/read",
			},
			DataActions: []string{"Microsoft.CognitiveServices/accounts/OpenAI/*"},
		}},
	},
	{
		ID: "00482a5a-887f-4fb3-b363-3b7fe8e74483", RoleName: "Key Vault Administrator",
		Description: "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []Permission{{Actions: keyVaultActions, DataActions: []string{"Microsoft.KeyVault/vaults/*"}}},
	},
	{
		ID: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", RoleName: "Key Vault Secrets Officer",
		Description: "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []Permission{{Actions: keyVaultActions, DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}}},
	},
	{
		ID: "4633458b-17de-408a-b874-0445c86b69e6", RoleName: "Key Vault Secrets User",
		Description: "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []Permission{{DataActions: []string{
			"Microsoft.KeyVault/vaults/secrets/getSecret/action",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		}}},
	},
	{
		ID: "21090545-7ca7-4776-b22c-e363652d74d2", RoleName: "Key Vault Reader",
		Description: "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []Permission{{Actions: keyVaultActions, DataActions: []string{
			"Microsoft.KeyVault/vaults/*/read",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		}}},
	},
	{
		ID: "f1a07417-d97a-45cb-824c-7a7467783830", RoleName: "Managed Identity Operator",
		Description: "Read and Assign User Assigned Identity",
		Permissions: []Permission{{Actions: []string{
			"Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
			"Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
			"Microsoft.Authorization/*/read",
			"Microsoft.Insights/alertRules/*",
			"Microsoft.Resources/subscriptions/resourceGroups/read",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Support/*",
		}}},
	},
}

// keyVaultActions are the control-plane actions shared by Key Vault
// Administrator, Secrets Officer and Reader.
var keyVaultActions = []string{
	"Microsoft.Authorization/*/read",
	"Microsoft.Insights/alertRules/*",
	"Microsoft.Resources/deployments/*",
	"Microsoft.Resources/subscriptions/resourceGroups/read",
	"Microsoft.Support/*",
	"Microsoft.KeyVault/checkNameAvailability/read",
	"Microsoft.KeyVault/deletedVaults/read",
	"Microsoft.KeyVault/locations/*/read",
	"Microsoft.KeyVault/vaults/*/read",
	"Microsoft.KeyVault/operations/read",
}

// Well-known built-in role ids, for callers that assign them in code.
const (
	RoleOwner                              = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	RoleContributor                        = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	RoleReader                             = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	RoleUserAccessAdministrator            = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RoleTagContributor                     = "4a9ae827-6dc8-4573-8ac7-8239d42aa03f"
	RoleCognitiveServicesContributor       = "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68"
	RoleCognitiveServicesUser              = "a97b65f3-24c7-4388-baec-2e87135dc908"
	RoleCognitiveServicesUsagesReader      = "bba48692-92b0-4667-a9ad-c31c7b334ac2"
	RoleCognitiveServicesOpenAIUser        = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
	RoleCognitiveServicesOpenAIContributor = "a001fd3d-188f-4b5d-821b-7da978bf7442"
	RoleKeyVaultAdministrator              = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
	RoleKeyVaultSecretsOfficer             = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	RoleKeyVaultSecretsUser                = "4633458b-17de-408a-b874-0445c86b69e6"
	RoleKeyVaultReader                     = "21090545-7ca7-4776-b22c-e363652d74d2"
	RoleManagedIdentityOperator            = "f1a07417-d97a-45cb-824c-7a7467783830"
)
