// Package resources is the ARM hierarchy above resources: subscriptions
// and resource groups, and the defaults a fresh installation starts with.
// It also holds the naming rules every resource shares (locations, tags,
// group names).
//
// # Records
//
//	kind                    key                                         value
//	resources.subscription  subscription GUID                           Subscription
//	resources.group         /subscriptions/{sub}/resourcegroups/{name}  Group (name keeps its case)
//	resources.defaults      "default"                                   Defaults
//
// # First start (EnsureDefaults), safe on several nodes at once
//
//	create defaults{subscription: new GUID}   (the first node's Create wins;
//	                                           the others read its record)
//	→ create the subscription record          (already exists: fine)
//	→ unless defaults.Bootstrapped:
//	     create resource group "default"      (already exists: fine)
//	     run the bootstrap hook               (Owner for the bootstrap principal)
//	     set defaults.Bootstrapped
//
// Each step is idempotent, so a crash between two steps is repaired by the
// next start. Once bootstrapped, a deleted default group stays deleted.
package resources
