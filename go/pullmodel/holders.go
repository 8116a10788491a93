package pullmodel

// noteHolders records that the model's repository holds its layers and
// config, so that a later push of the same files to another repository of
// the registry mounts them instead of sending them (see cache.Holders). Every
// layer counts, selected or not: the manifest names them all, so the
// registry has them all.
func (p *puller) noteHolders(res *resolved) {
	if p.o.Offline {
		return // nothing new was learnt from the registry
	}
	digests := []string{res.model.Config.Digest}
	for _, f := range res.model.Files {
		digests = append(digests, f.Digest)
	}
	p.cache.NoteHolder(p.repo.Name(), digests...)
}
