use super::*;

fn parse(yaml: &str) -> DataFormatConversionConfiguration {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn columns() -> SchemaSource {
    SchemaSource::Inline {
        columns: vec![Column::new("ts", "timestamp"), Column::new("msg", "string")],
    }
}

const GOOD: &str = r#"
InputFormatConfiguration:
  Deserializer:
    OpenXJsonSerDe: {CaseInsensitive: true, ColumnToJsonKeyMappings: {ts: timestamp}}
OutputFormatConfiguration:
  Serializer:
    ParquetSerDe: {Compression: GZIP, BlockSizeBytes: 67108864, PageSizeBytes: 65536, WriterVersion: V2, EnableDictionaryCompression: false, MaxPaddingBytes: 0}
SchemaConfiguration: {RoleARN: "arn:aws:iam::1:role/r", CatalogId: "1", DatabaseName: db, TableName: t, Region: us-east-1, VersionId: LATEST}
Enabled: true
"#;

#[test]
fn a_firehose_configuration_parses_and_validates_cleanly() {
    let c = parse(GOOD);
    assert!(c.is_enabled());
    let p = c.parquet_ser_de().unwrap();
    assert_eq!(p.compression(), ParquetCompression::Gzip);
    assert_eq!(p.writer_version(), ParquetWriterVersion::V2);
    assert!(!p.enable_dictionary_compression());
    assert_eq!(
        c.schema_configuration.as_ref().unwrap().role_arn.as_deref(),
        Some("arn:aws:iam::1:role/r")
    );
    assert_eq!(validate(&c, Some(&columns())), vec![]);
    // and it serializes back to the same JSON member names
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["InputFormatConfiguration"]["Deserializer"]["OpenXJsonSerDe"]["CaseInsensitive"],
        true
    );
    assert_eq!(json["SchemaConfiguration"]["RoleARN"], "arn:aws:iam::1:role/r");
    assert_eq!(
        json["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]["Compression"],
        "GZIP"
    );
}

#[test]
fn defaults_follow_firehose() {
    let c = parse("OutputFormatConfiguration: {Serializer: {ParquetSerDe: {}}}");
    let p = c.parquet_ser_de().unwrap();
    assert_eq!(p.compression(), ParquetCompression::Snappy);
    assert_eq!(p.block_size_bytes(), 256 * MIB);
    assert_eq!(p.page_size_bytes(), MIB);
    assert_eq!(p.writer_version(), ParquetWriterVersion::V1);
    assert!(c.is_enabled());
    let o: OpenXJsonSerDe = serde_json::from_str("{}").unwrap();
    assert!(o.case_insensitive());
    assert!(!o.convert_dots());
}

#[test]
fn unknown_members_and_bad_enum_values_are_rejected_when_parsing() {
    for bad in [
        "Enabledd: true",
        "OutputFormatConfiguration: {Serializer: {ParquetSerDe: {Compression: LZ4}}}",
        "OutputFormatConfiguration: {Serializer: {ParquetSerDe: {Compression: snappy}}}",
        "OutputFormatConfiguration: {Serializer: {ParquetSerDe: {WriterVersion: V3}}}",
        "InputFormatConfiguration: {Deserializer: {OpenXJsonSerde: {}}}",
    ] {
        assert!(
            serde_yaml_ng::from_str::<DataFormatConversionConfiguration>(bad).is_err(),
            "{bad}"
        );
    }
    let zstd =
        parse("OutputFormatConfiguration: {Serializer: {ParquetSerDe: {Compression: ZSTD}}}");
    assert_eq!(zstd.parquet_ser_de().unwrap().compression(), ParquetCompression::Zstd);
}

#[test]
fn orc_parses_but_validation_says_to_use_parquet() {
    let c = parse(
            "InputFormatConfiguration: {Deserializer: {HiveJsonSerDe: {}}}\n\
             OutputFormatConfiguration: {Serializer: {OrcSerDe: {Compression: ZLIB, StripeSizeBytes: 8388608, PaddingTolerance: 0.05, FormatVersion: V0_12}}}",
        );
    assert_eq!(
        validate(&c, Some(&columns())),
        vec![(
            "OutputFormatConfiguration.Serializer.OrcSerDe".to_string(),
            "ORC output is not supported; use ParquetSerDe".to_string()
        )]
    );
}

#[test]
fn validation_names_each_bad_field() {
    let c = parse(
            "InputFormatConfiguration: {Deserializer: {HiveJsonSerDe: {TimestampFormats: [millis, \"yyyy-ww\"]}}}\n\
             OutputFormatConfiguration: {Serializer: {ParquetSerDe: {BlockSizeBytes: 1000, PageSizeBytes: 10}}}",
        );
    let schema = SchemaSource::Inline {
        columns: vec![
            Column::new("a.b", "int"),
            Column::new("A.B", "int"),
            Column::new("c", "strin"),
            Column::new("d", "struct<x.y:int>"),
        ],
    };
    let issues = validate(&c, Some(&schema));
    let paths: Vec<&str> = issues.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "InputFormatConfiguration.Deserializer.HiveJsonSerDe.TimestampFormats[1]",
            "OutputFormatConfiguration.Serializer.ParquetSerDe.BlockSizeBytes",
            "OutputFormatConfiguration.Serializer.ParquetSerDe.PageSizeBytes",
            "hydrant.schema.columns[0].name",
            "hydrant.schema.columns[1].name",
            "hydrant.schema.columns[1].name",
            "hydrant.schema.columns[2].type",
            "hydrant.schema.columns[3].type",
        ],
        "{issues:#?}"
    );
    assert!(issues[3].1.contains("HiveJsonSerDe does not accept"));
    assert!(issues[6].1.contains("unknown type `strin`"));
}

#[test]
fn enabled_conversion_requires_deserializer_serializer_and_schema() {
    let issues = validate(&DataFormatConversionConfiguration::default(), None);
    let paths: Vec<&str> = issues.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["InputFormatConfiguration", "OutputFormatConfiguration", "hydrant.schema"]);
    let disabled = parse("Enabled: false");
    assert_eq!(validate(&disabled, None), vec![]);
    let both = parse(
        "InputFormatConfiguration: {Deserializer: {HiveJsonSerDe: {}, OpenXJsonSerDe: {}}}\n\
             OutputFormatConfiguration: {Serializer: {ParquetSerDe: {}}}",
    );
    assert!(validate(&both, Some(&columns()))[0].1.contains("only one"));
}

#[test]
fn mappings_must_name_schema_columns() {
    let c = parse(
            "InputFormatConfiguration: {Deserializer: {OpenXJsonSerDe: {ColumnToJsonKeyMappings: {nope: x}}}}\n\
             OutputFormatConfiguration: {Serializer: {ParquetSerDe: {}}}",
        );
    let issues = validate(&c, Some(&columns()));
    assert_eq!(
        issues[0].0,
        "InputFormatConfiguration.Deserializer.OpenXJsonSerDe.ColumnToJsonKeyMappings.nope"
    );
}

#[test]
fn schema_source_is_columns_or_file_but_not_both() {
    let inline: SchemaSource = serde_yaml_ng::from_str("columns: [{name: a, type: int}]").unwrap();
    assert_eq!(inline, SchemaSource::Inline { columns: vec![Column::new("a", "int")] });
    let file: SchemaSource = serde_yaml_ng::from_str("file: s.yaml").unwrap();
    assert_eq!(file, SchemaSource::File { file: "s.yaml".into() });
    let both = serde_yaml_ng::from_str::<SchemaSource>("{file: s.yaml, columns: []}");
    assert!(both.unwrap_err().to_string().contains("not both"));
    let neither = serde_yaml_ng::from_str::<SchemaSource>("{}");
    assert!(neither.unwrap_err().to_string().contains("needs `columns`"));
    let typo = serde_yaml_ng::from_str::<SchemaSource>("{colums: []}");
    assert!(typo.is_err());
}

#[test]
fn schema_files_load_from_yaml_or_json_relative_to_a_base_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.yaml"), "columns:\n  - {name: a, type: int}\n").unwrap();
    std::fs::write(dir.path().join("s.json"), r#"[{"name": "b", "type": "array<string>"}]"#)
        .unwrap();
    let yaml = SchemaSource::File { file: "s.yaml".into() };
    assert_eq!(yaml.load(Some(dir.path())).unwrap(), vec![Column::new("a", "int")]);
    let json = SchemaSource::File { file: "s.json".into() };
    assert_eq!(json.load(Some(dir.path())).unwrap(), vec![Column::new("b", "array<string>")]);
    let missing = SchemaSource::File { file: "nope.yaml".into() };
    assert!(matches!(missing.load(Some(dir.path())), Err(SchemaLoadError::Read { .. })));
    let c = parse(GOOD);
    let issues = validate(&c, Some(&missing));
    assert_eq!(issues[0].0, "hydrant.schema.file");
}
