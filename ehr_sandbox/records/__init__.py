"""Operations on the legal record (corrections, addenda, late entries, registration updates,
signatures, bundles) built on the Session's checked reads and writes."""
