package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// `gatehouse cognitiveservices account deployment …` manages an account's
// deployments (az cognitiveservices account deployment …): a deployment
// name clients use in /openai/deployments/{name}/… mapped to a model of
// the server's catalog (serve --models; `account list-models`) or to an
// OpenAI-compatible upstream of its own. The upstream's key never travels on the
// command line: it is read from a file (--upstream-key-file, "-" for stdin)
// or from $GATEHOUSE_UPSTREAM_KEY — or, with --upstream-key-vault-secret,
// the server reads it from Key Vault as the account's managed identity.

func newDeploymentCmd(env Env) *cobra.Command {
	d := newGroup("deployment", "Manage an account's deployments: names mapped to OpenAI-compatible upstreams")
	d.AddCommand(newDeploymentCreateCmd(env), newDeploymentListCmd(env), newDeploymentShowCmd(env), newDeploymentDeleteCmd(env))
	return d
}

// deploymentFlags are the account flags plus --deployment-name.
type deploymentFlags struct {
	armFlags
	deployment string
}

func (f *deploymentFlags) add(c *cobra.Command) {
	f.armFlags.add(c, true)
	c.Flags().StringVar(&f.deployment, "deployment-name", "", "deployment name")
}

func (f *deploymentFlags) path(c *apiClient, withDeployment bool) (string, error) {
	suffix := "/deployments"
	if withDeployment {
		if f.deployment == "" {
			return "", errors.New("--deployment-name is required")
		}
		suffix += "/" + url.PathEscape(f.deployment)
	}
	return f.accountPath(c, suffix, true)
}

func newDeploymentCreateCmd(env Env) *cobra.Command {
	var f deploymentFlags
	var model, format, version, sku, upstream, upstreamModel, keyHeader, keyFile, kvSecret string
	var capacity int
	cmd := &cobra.Command{Use: "create", Short: "Create or replace a deployment: a model of the server's catalog, or an upstream base URL, model and key", Args: cobra.NoArgs,
		Example: `  gatehouse cognitiveservices account list-models -g default -n my-openai
  gatehouse cognitiveservices account deployment create -g default -n my-openai \
    --deployment-name chat --model-name gpt-4o-mini --model-version 2024-07-18 --sku-capacity 5
  gatehouse cognitiveservices account deployment create -g default -n my-openai \
    --deployment-name gpt-4o --model-name gpt-4o \
    --upstream-endpoint http://vllm.internal:8000 --upstream-model meta-llama/Llama-3.1-8B-Instruct \
    --upstream-key-file ./vllm.key
  gatehouse cognitiveservices account deployment create -g default -n my-openai \
    --deployment-name gpt-4o --model-name gpt-4o --upstream-endpoint http://vllm.internal:8000 \
    --upstream-key-vault-secret https://my-vault.vault.localhost:8443/secrets/vllm-key`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" {
				return errors.New("--model-name is required")
			}
			if upstream == "" && (upstreamModel != "" || keyHeader != "" || keyFile != "" || kvSecret != "") {
				return errors.New("the --upstream-* flags need --upstream-endpoint (without it, the model is one of the server's catalog: list-models)")
			}
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(c, true)
			if err != nil {
				return err
			}
			m := map[string]any{"format": format, "name": model}
			if version != "" {
				m["version"] = version
			}
			props := map[string]any{"model": m}
			body := map[string]any{"sku": map[string]any{"name": sku, "capacity": capacity}, "properties": props}
			if upstream == "" {
				// A model of the server's catalog (serve --models).
				return armCall(cmd, env, "PUT", p, body, true)
			}
			up := map[string]any{"endpoint": upstream}
			props["upstream"] = up
			if upstreamModel != "" {
				up["model"] = upstreamModel
			}
			if keyHeader != "" {
				up["keyHeader"] = keyHeader
			}
			if kvSecret != "" {
				if keyFile != "" {
					return errors.New("give --upstream-key-file or --upstream-key-vault-secret, not both")
				}
				up["keyVaultSecret"] = kvSecret
			} else {
				key, given, err := upstreamKey(env, keyFile)
				if err != nil {
					return err
				}
				if given {
					up["key"] = key
				}
			}
			return armCall(cmd, env, "PUT", p, body, true)
		}}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&model, "model-name", "", "model name (properties.model.name)")
	fl.StringVar(&format, "model-format", "OpenAI", "model format")
	fl.StringVar(&version, "model-version", "", "model version")
	fl.StringVar(&sku, "sku-name", "Standard", "deployment sku")
	fl.IntVar(&capacity, "sku-capacity", 1, "deployment capacity: units of 1,000 tokens and 6 requests a minute, enforced when the server runs with --deployment-quotas")
	fl.StringVar(&upstream, "upstream-endpoint", "", "base URL of the OpenAI-compatible upstream (requests go to {url}/v1/…); without it the model must be one the server's catalog offers (list-models)")
	fl.StringVar(&upstreamModel, "upstream-model", "", "model name sent upstream (default: --model-name)")
	fl.StringVar(&keyHeader, "upstream-key-header", "", "header carrying the upstream key (default: Authorization: Bearer)")
	fl.StringVar(&kvSecret, "upstream-key-vault-secret", "", "read the upstream key from this Key Vault secret (https://{vault}.vault.H/secrets/{name}[/{version}]) as the account's managed identity, which needs Key Vault Secrets User on it")
	fl.StringVar(&keyFile, "upstream-key-file", "", "file holding the upstream's key (- = stdin; default: $GATEHOUSE_UPSTREAM_KEY; a replace without either keeps the current key for the same endpoint and header)")
	return cmd
}

// upstreamKey reads the upstream key from file (or "-": stdin), else
// $GATEHOUSE_UPSTREAM_KEY. given is false when neither is set.
func upstreamKey(env Env, file string) (key string, given bool, err error) {
	if file == "" {
		key, given = env.LookupEnv("GATEHOUSE_UPSTREAM_KEY")
		return key, given, nil
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(env.Stdin, 8<<10))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return "", false, fmt.Errorf("--upstream-key-file: %w", err)
	}
	key = strings.TrimSpace(string(data))
	if key == "" {
		// An empty key would be stored as none: the upstream would get
		// requests without a credential.
		return "", false, fmt.Errorf("--upstream-key-file: %s is empty (an upstream without a key takes no --upstream-key-file)", file)
	}
	return key, true, nil
}

func newDeploymentListCmd(env Env) *cobra.Command {
	var f deploymentFlags
	cmd := &cobra.Command{Use: "list", Short: "List an account's deployments", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(c, false)
			if err != nil {
				return err
			}
			return listCall(cmd, env, c, p)
		}}
	f.armFlags.add(cmd, true)
	return cmd
}

func newDeploymentShowCmd(env Env) *cobra.Command {
	var f deploymentFlags
	cmd := &cobra.Command{Use: "show", Short: "Show a deployment", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(c, true)
			if err != nil {
				return err
			}
			return armCall(cmd, env, "GET", p, nil, true)
		}}
	f.add(cmd)
	return cmd
}

func newDeploymentDeleteCmd(env Env) *cobra.Command {
	var f deploymentFlags
	cmd := &cobra.Command{Use: "delete", Short: "Delete a deployment (the gateway stops serving it at once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.path(c, true)
			if err != nil {
				return err
			}
			return c.Do(cmd.Context(), "DELETE", p, nil, nil)
		}}
	f.add(cmd)
	return cmd
}

func newAccountListModelsCmd(env Env) *cobra.Command {
	var f armFlags
	cmd := &cobra.Command{Use: "list-models", Short: "List the models an account's deployments may name without an upstream (the server's model catalog)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd, env)
			if err != nil {
				return err
			}
			p, err := f.accountPath(c, "/models", true)
			if err != nil {
				return err
			}
			return listCall(cmd, env, c, p)
		}}
	f.add(cmd, true)
	return cmd
}

func newModelCmd(env Env) *cobra.Command {
	m := newGroup("model", "The models the server offers (its model catalog)")
	m.AddCommand(withTable(locationListCmd(env, "models", "List the models deployments may name in a location, per account kind", ""),
		"[].{Kind: kind, Format: model.format, Name: model.name, Version: model.version, SkuName: skuName}"))
	m.AddCommand(newModelCapacityCmd(env))
	return m
}

// newModelCapacityCmd is `model capacity list`: GET {sub}/providers/
// Microsoft.CognitiveServices[/locations/{loc}]/modelCapacities.
func newModelCapacityCmd(env Env) *cobra.Command {
	var f armFlags
	var location, format, name, version string
	list := &cobra.Command{Use: "list", Short: "List the capacity of a catalog model the subscription may still deploy, per location and sku",
		Example: `  gatehouse cognitiveservices model capacity list --model-name gpt-4o-mini --model-version 2024-07-18 -l westus -o table`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" || version == "" {
				return errors.New("--model-name and --model-version are required")
			}
			rel := "modelCapacities"
			if location != "" {
				rel = "locations/" + url.PathEscape(location) + "/" + rel
			}
			q := url.Values{"api-version": {accountsAPIVersion}, "modelFormat": {format}, "modelName": {name}, "modelVersion": {version}}
			return providerListCall(cmd, env, &f, rel+"?"+q.Encode())
		}}
	list.Flags().StringVarP(&location, "location", "l", "", "location (westus, …; default: every location)")
	list.Flags().StringVar(&format, "model-format", "OpenAI", "model format")
	list.Flags().StringVar(&name, "model-name", "", "model name (gpt-4o-mini, …)")
	list.Flags().StringVar(&version, "model-version", "", "model version (2024-07-18, …)")
	list.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	addOutputFlags(list)
	withTable(list, "[].{Location: location, Format: properties.model.format, Model: properties.model.name, Version: properties.model.version, Sku: properties.skuName, Available: properties.availableCapacity}")
	c := newGroup("capacity", "What is left of the catalog models' quotas")
	c.AddCommand(list)
	return c
}

func newUsageCmd(env Env) *cobra.Command {
	u := newGroup("usage", "The model quotas of a location (the server's model catalog)")
	u.AddCommand(withTable(locationListCmd(env, "usages", "List each catalog model's quota in a location: capacity deployed and limit, per sku",
		`  gatehouse cognitiveservices usage list -l westus -o table`), "[].{Name: name.value, Current: currentValue, Limit: limit, Unit: unit}"))
	return u
}

// locationListCmd is `list -l LOCATION`: GET {sub}/providers/
// Microsoft.CognitiveServices/locations/{loc}/{collection}.
func locationListCmd(env Env, collection, short, example string) *cobra.Command {
	var f armFlags
	var location string
	list := &cobra.Command{Use: "list", Short: short, Example: example, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if location == "" {
				return errors.New("--location is required")
			}
			return providerListCall(cmd, env, &f, "locations/"+url.PathEscape(location)+"/"+collection+"?api-version="+accountsAPIVersion)
		}}
	list.Flags().StringVarP(&location, "location", "l", "", "location (westus, …)")
	list.Flags().StringVar(&f.sub, "subscription", "", "subscription id (default: the profile's)")
	addOutputFlags(list)
	return list
}
