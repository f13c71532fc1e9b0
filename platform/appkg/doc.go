// Package appkg builds, inspects, verifies, opens and exports offline app packages (.wtapp).
//
// An app package is a bundle archive (see package bundle) of kind AppPackage. Its manifest names the app key and
// version, the package arches and every image with its index digest and per-arch manifest digests. The payload is,
// in this order, and nothing else:
//
//	app.json                 the app's canonical JSON (platform/app); its sha256 is the version's content digest
//	oci/oci-layout           one OCI image layout holding every image App.Images() names, each index.json entry
//	oci/index.json           named by its org.opencontainers.image.ref.name annotation
//	oci/blobs/sha256/<hex>   blobs shared across images and arches, stored once, in digest order
//
// Each image holds exactly the package arches, except an image whose components all name their arches, which holds
// the package arches among those. A package whose model, manifest image list and layout do not name exactly the
// same images (and arches) is refused when built and when read, with an error naming the image and the fix.
//
// Build stages the layout next to the output and renames the finished file into place, so a failure leaves no
// partial package. Inspect reads only the manifest, signature and app.json at the head of the archive. Verify
// reads and checks everything; Open checks the head of a stream and Package.ExtractLayout the rest. Export streams
// a package for an imported version straight from a registry, holding only manifests in memory.
package appkg

// Entry names inside an app package.
const (
	AppEntry        = "app.json"
	OCIPrefix       = "oci/"
	ociLayoutEntry  = OCIPrefix + "oci-layout"
	ociIndexEntry   = OCIPrefix + "index.json"
	ociBlobPrefix   = OCIPrefix + "blobs/sha256/"
	ociLayoutFile   = `{"imageLayoutVersion":"1.0.0"}`
	fileExt         = ".wtapp"
	maxAppJSON      = 16 << 20 // bound on app.json, read into memory
	maxIndexJSON    = 16 << 20 // bound on oci/index.json, read into memory
	maxManifestBlob = 4 << 20  // bound on an image index or manifest blob kept in memory while checking
)
