// Package seed writes images straight into the filesystem storage of a distribution/distribution v3 registry (the
// "filesystem" driver's rootdirectory), without a push round-trip: from an OCI image layout (FromLayout) or from the
// oci/ layout inside a signed bundle, streamed without extracting it first (FromBundle).
//
// # Storage layout
//
// Under <root>/docker/registry/v2 (registry/storage/paths.go in distribution v3.1.2):
//
//	blobs/sha256/<hex[:2]>/<hex>/data                                   every blob, manifests and indexes included
//	repositories/<repo>/_layers/sha256/<hex>/link                       every config and layer blob of the repo's images
//	repositories/<repo>/_manifests/revisions/sha256/<hex>/link          every manifest: the index and each child
//	repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link   the tag's history
//	repositories/<repo>/_manifests/tags/<tag>/current/link              what the tag points at
//
// A link file holds "sha256:<hex>" and nothing else, as distribution writes it. The registry serves a blob of a
// repository only when the repository's _layers link exists, a manifest only when its revision link exists (this is
// also how GET by digest of an index's child is resolved), and a tag through current/link and then the revision
// link. An index's children must be revisions of the same repository; distribution checks that on push, and a
// client that pulls the index fetches each child through the same repository.
//
// # Atomic visibility
//
// Seeding is safe while the registry runs, and a client never sees a half-written image, because:
//
//   - Every file is written to a temporary name under <root>/.wtctl-seed-* (same filesystem, outside the
//     docker/ tree that the registry reads or walks) and renamed into place. rename(2) is atomic, so a reader
//     sees either no file or the complete file, never a prefix. Blob data is renamed only after its sha256 and
//     size were checked: by us for a layout (also when the data is a hard link of the layout's file), and by the
//     bundle reader for a bundle, whose check fires at the entry's EOF.
//   - Links are created in dependency order, after all blob data of the run is in place: the config and layer
//     links of an image, then the revision link of each child image manifest, then the index's revision link,
//     and the tag links last (index entry, then current/link). Each step only makes reachable content whose
//     dependencies are already reachable. Until current/link exists the tag is unknown (404 MANIFEST_UNKNOWN or
//     NAME_UNKNOWN); from the moment it exists everything it leads to is readable. A digest is reachable only
//     through its revision link, which is written after everything that manifest refers to.
//   - Re-pointing an existing tag is one rename of current/link, so a client gets the old or the new image.
//   - If anything fails (a corrupt blob, a full disk, a cancelled context), no link of the run is written for an
//     image whose blobs are not all in place; blob data that did land is content-addressed and verified, invisible
//     until linked, and reused by the next run.
//
// The registry needs no restart: the filesystem driver reads the tree on every request. distribution's only cache
// in the read path is the optional blob descriptor cache (storage.cache.blobdescriptor: inmemory or redis), and it
// stores found descriptors only, never a miss (registry/storage/cache/cachedblobdescriptorstore.go: a backend error
// is returned without SetDescriptor), so new content is found at the next request with or without that cache. There
// is no tag or manifest cache. A registry configured as a pull-through cache (proxy) is a different thing and is
// not a seeding target.
//
// # Idempotence and trust in existing content
//
// A blob whose data file already exists with the expected size is skipped without re-hashing it (Options.VerifyExisting
// re-hashes it and replaces it when it is wrong). Data files only get there through a verified rename: ours, or the
// registry's own upload path, which checks the digest. Re-hashing a store of many gigabytes on every run would cost
// what seeding saves. A link whose content is already right is left alone. Seeding the same content twice writes no
// byte (Stats.BytesWritten == 0).
//
// Blob data is not fsynced one file at a time; the filesystem is synced once (syncfs) after all data and before the
// first link, so that links never point at data that an unclean shutdown could lose. After a crash in the middle of
// a seed, run again with VerifyExisting to be sure about data files that were renamed but not yet synced.
//
// # Hard links
//
// FromLayout hard-links a source blob into the store when both are on one filesystem: the link is made at a
// temporary name, the linked file is hashed, and only then renamed into place. The store and the layout then share
// the file: do not modify layout blobs in place afterwards (OCI tools never do; they are content-addressed). Across
// filesystems, or where linking is not allowed, the blob is copied into a temporary file and hashed on the way.
package seed
