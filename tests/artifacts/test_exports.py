import mloop.artifacts


def test_exported_members() -> None:
    assert mloop.artifacts.__all__ == [
        "BlobRef",
        "BlobStore",
        "IntegrityError",
        "collect_files",
        "dataset_digest",
        "dataset_file_size",
        "delete_blobs",
        "download_tree",
        "find_unreferenced",
        "load_dataset",
        "open_dataset_file",
        "store_dataset",
        "to_arrow_table",
        "upload_tree",
        "validate_artifact_path",
    ]
    for name in mloop.artifacts.__all__:
        # validate_artifact_path is the store's own check, re-exported (one definition for both layers)
        assert getattr(mloop.artifacts, name).__module__.startswith(
            ("mloop.artifacts.", "mloop.store.")
        )
