package resources

import (
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Location is a region Gatehouse offers. Gatehouse has no regions of its
// own: a location only labels a resource, as on Azure, where it must be one
// the resource type is registered in. These are Azure's public regions
// where Cognitive Services accounts are offered, and "local", where
// Gatehouse puts what it creates by itself.
type Location struct {
	// Name is ARM's form ("westus"); DisplayName the portal's ("West US");
	// Geography the group the regional display name names ("US").
	Name, DisplayName, Geography string
}

var locations = []Location{
	{"australiaeast", "Australia East", "Asia Pacific"},
	{"brazilsouth", "Brazil South", "South America"},
	{"canadacentral", "Canada Central", "Canada"},
	{"canadaeast", "Canada East", "Canada"},
	{"centralindia", "Central India", "Asia Pacific"},
	{"centralus", "Central US", "US"},
	{"eastasia", "East Asia", "Asia Pacific"},
	{"eastus", "East US", "US"},
	{"eastus2", "East US 2", "US"},
	{"francecentral", "France Central", "Europe"},
	{"germanywestcentral", "Germany West Central", "Europe"},
	{"japaneast", "Japan East", "Asia Pacific"},
	{"japanwest", "Japan West", "Asia Pacific"},
	{"koreacentral", "Korea Central", "Asia Pacific"},
	{"northcentralus", "North Central US", "US"},
	{"northeurope", "North Europe", "Europe"},
	{"norwayeast", "Norway East", "Europe"},
	{"polandcentral", "Poland Central", "Europe"},
	{"qatarcentral", "Qatar Central", "Middle East"},
	{"southafricanorth", "South Africa North", "Africa"},
	{"southcentralus", "South Central US", "US"},
	{"southeastasia", "Southeast Asia", "Asia Pacific"},
	{"southindia", "South India", "Asia Pacific"},
	{"swedencentral", "Sweden Central", "Europe"},
	{"switzerlandnorth", "Switzerland North", "Europe"},
	{"uaenorth", "UAE North", "Middle East"},
	{"uksouth", "UK South", "Europe"},
	{"ukwest", "UK West", "Europe"},
	{"westcentralus", "West Central US", "US"},
	{"westeurope", "West Europe", "Europe"},
	{"westus", "West US", "US"},
	{"westus2", "West US 2", "US"},
	{"westus3", "West US 3", "US"},
	{DefaultLocation, "Local", "Gatehouse"},
}

// Locations returns the locations resource groups and resources may be in,
// in ARM's form, in a stable order. The caller may keep the slice.
func Locations() []Location {
	return append([]Location(nil), locations...)
}

// LocationNames returns the Name of every location.
func LocationNames() []string {
	out := make([]string, len(locations))
	for i, l := range locations {
		out[i] = l.Name
	}
	return out
}

// KnownLocation reports whether loc, in ARM's form (NormalizeLocation's
// answer), is one of Locations.
func KnownLocation(loc string) bool {
	for _, l := range locations {
		if l.Name == loc {
			return true
		}
	}
	return false
}

// ResourceLocation returns ARM's form of loc ("West US" → "westus": case
// and spaces do not count, as in ARM) for a resource of type typ (such as
// Microsoft.CognitiveServices/accounts), which must be in one of
// Locations.
//
// Errors (*gatehouse.Error): 400 LocationRequired, InvalidLocation,
// LocationNotAvailableForResourceType.
func ResourceLocation(loc, typ string) (string, error) {
	norm, err := NormalizeLocation(loc)
	if err != nil {
		return "", err
	}
	if !KnownLocation(norm) {
		// ARM's message, which echoes the location as given.
		return "", gatehouse.Errorf(http.StatusBadRequest, "LocationNotAvailableForResourceType",
			"The provided location '%s' is not available for resource type '%s'. List of available regions for the resource type is '%s'.",
			clip(loc), typ, strings.Join(LocationNames(), ",")).WithTarget("location")
	}
	return norm, nil
}

// errGroupLocation is ARM's answer to a group created elsewhere than in
// one of Locations.
func errGroupLocation(loc string) error {
	return gatehouse.Errorf(http.StatusBadRequest, "LocationNotAvailableForResourceGroup",
		"The provided location '%s' is not available for resource group. List of available regions is '%s'.",
		clip(loc), strings.Join(LocationNames(), ",")).WithTarget("location")
}
