"""The GraphQL documents the action sends (see reference/wandb.md)."""

ARTIFACT_FIELDS = """
fragment ArtifactFields on Artifact {
  id
  versionIndex
  state
  digest
  size
  fileCount
  description
  metadata
  artifactType { name }
  artifactSequence { name project { name entity { name } } }
  aliases { alias }
}
"""

ARTIFACT_MEMBERSHIP = (
    """
query ArtifactMembership($entityName: String!, $projectName: String!, $name: String!) {
  project(name: $projectName, entityName: $entityName) {
    artifactCollectionMembership(name: $name) {
      versionIndex
      aliases { alias }
      artifactCollection { name project { name entity { name } } }
      artifact { ...ArtifactFields }
    }
  }
}
"""
    + ARTIFACT_FIELDS
)

ARTIFACT_BY_NAME = (
    """
query ArtifactByName($entityName: String!, $projectName: String!, $name: String!) {
  project(name: $projectName, entityName: $entityName) {
    artifact(name: $name) { ...ArtifactFields }
  }
}
"""
    + ARTIFACT_FIELDS
)

ARTIFACT_BY_ID = (
    """
query ArtifactById($id: ID!) {
  artifact(id: $id) { ...ArtifactFields }
}
"""
    + ARTIFACT_FIELDS
)

ORG_ENTITY = """
query OrgEntity($entityName: String!) {
  entity(name: $entityName) { organization { name orgEntity { name } } }
}
"""

MANIFEST = """
query ArtifactManifest($id: ID!) {
  artifact(id: $id) { currentManifest { file { directUrl } } }
}
"""

_FILES = (
    "files(after: $cursor, first: $perPage) "
    "{ pageInfo { endCursor hasNextPage } edges { node { name directUrl } } }"
)

MEMBERSHIP_FILES = (
    """
query MembershipFileUrls($entityName: String!, $projectName: String!,
    $collectionName: String!, $alias: String!, $cursor: String, $perPage: Int) {
  project(name: $projectName, entityName: $entityName) {
    artifactCollection(name: $collectionName) {
      artifactMembership(aliasName: $alias) { """
    + _FILES
    + """ }
    }
  }
}
"""
)

ARTIFACT_FILES = (
    """
query ArtifactFileUrls($id: ID!, $cursor: String, $perPage: Int) {
  artifact(id: $id) { """
    + _FILES
    + """ }
}
"""
)
