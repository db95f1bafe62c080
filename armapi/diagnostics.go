package armapi

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Diagnostic settings (az monitor diagnostic-settings list|show|create):
// Gatehouse sends no resource logs or metrics anywhere — its audit log,
// Activity Log and Prometheus endpoint are where they are — so every
// resource has none: the list is empty, one setting is 404, and creating
// one is refused with the reason, instead of ARM's InvalidResourceType for
// the whole collection (compliance scripts list them on every resource).

const actDiagnosticSettingsRead = "Microsoft.Insights/diagnosticSettings/read"

var diagnosticRoutes = []route{
	{method: "GET", pattern: "{scope*}/providers/Microsoft.Insights/diagnosticSettings", family: famDiagnostics, handle: listDiagnosticSettings},
	{method: "GET", pattern: "{scope*}/providers/Microsoft.Insights/diagnosticSettings/{name}", family: famDiagnostics, handle: getDiagnosticSetting},
	{method: "PUT", pattern: "{scope*}/providers/Microsoft.Insights/diagnosticSettings/{name}", family: famDiagnostics, handle: putDiagnosticSetting},
}

// diagnosticScope checks that the caller may read the settings of an
// existing resource (or group, or subscription).
func (c *call) diagnosticScope() error {
	if c.scope == nil || c.scope.Subscription == "" {
		return gatehouse.BadRequestf(gatehouse.CodeInvalidRequest, "Diagnostic settings belong to a subscription, a resource group or a resource.")
	}
	if err := c.authorize(actDiagnosticSettingsRead, c.scope); err != nil {
		return err
	}
	return c.checkScope(c.scope)
}

func listDiagnosticSettings(c *call) error {
	if err := c.diagnosticScope(); err != nil {
		return err
	}
	return c.reply(http.StatusOK, list[struct{}]{Value: []struct{}{}})
}

func getDiagnosticSetting(c *call) error {
	if err := c.diagnosticScope(); err != nil {
		return err
	}
	return gatehouse.NotFoundf(gatehouse.CodeResourceNotFound, "The diagnostic setting '%s' doesn't exist.", clip(c.param("name")))
}

func putDiagnosticSetting(c *call) error {
	if err := c.diagnosticScope(); err != nil {
		return err
	}
	return gatehouse.BadRequestf("DiagnosticSettingsNotSupported",
		"Gatehouse sends no resource logs or metrics elsewhere: read its audit log (gatehouse audit list), the Activity Log (az monitor activity-log list), Azure Monitor metrics (az monitor metrics list) or its Prometheus endpoint (/metrics).")
}
