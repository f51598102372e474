// One typed field per pipeline parameter, built from its JSON schema, with its description and an
// inline error when what is typed is not a valid value.
import { Badge, Checkbox, Field, HStack, Input, NativeSelect, SimpleGrid, Text } from "@chakra-ui/react";

import { type FieldInput, type FieldKind, type Parsed, showValue } from "../params";
import type { ParamSpec } from "../types";

export type FieldState = {
  readonly name: string;
  readonly kind: FieldKind;
  readonly spec: ParamSpec;
  readonly input: FieldInput;
  readonly parsed: Parsed;
  readonly changed: boolean;
};

type Props = {
  readonly fields: Array<FieldState>;
  readonly onChange: (name: string, input: FieldInput) => void;
};

const typeLabel = (field: FieldState): string =>
  field.kind === "enum" ? "choice" : field.kind === "json" ? "JSON" : field.kind;

const Control = ({
  field,
  onChange,
}: {
  readonly field: FieldState;
  readonly onChange: Props["onChange"];
}) => {
  const id = `mlpipe-param-${field.name}`;
  switch (field.kind) {
    case "boolean":
      return (
        <Checkbox.Root
          checked={field.input === true}
          data-testid={`param-${field.name}`}
          onCheckedChange={(details) => onChange(field.name, details.checked === true)}
        >
          <Checkbox.HiddenInput id={id} />
          <Checkbox.Control />
          <Checkbox.Label>{field.input === true ? "true" : "false"}</Checkbox.Label>
        </Checkbox.Root>
      );
    case "enum":
      return (
        <NativeSelect.Root size="sm">
          <NativeSelect.Field
            data-testid={`param-${field.name}`}
            id={id}
            onChange={(event) => onChange(field.name, event.currentTarget.value)}
            value={String(field.input)}
          >
            {field.input === "" ? <option value="">Choose…</option> : undefined}
            {(field.spec.schema.enum ?? []).map((choice, index) => (
              <option key={JSON.stringify(choice)} value={String(index)}>
                {showValue(choice)}
              </option>
            ))}
          </NativeSelect.Field>
          <NativeSelect.Indicator />
        </NativeSelect.Root>
      );
    default:
      return (
        <Input
          autoComplete="off"
          data-testid={`param-${field.name}`}
          fontFamily={field.kind === "string" ? undefined : "mono"}
          id={id}
          inputMode={field.kind === "integer" ? "numeric" : field.kind === "number" ? "decimal" : undefined}
          onChange={(event) => onChange(field.name, event.currentTarget.value)}
          size="sm"
          value={String(field.input)}
        />
      );
  }
};

export const ParameterFields = ({ fields, onChange }: Props) => {
  if (fields.length === 0) {
    return (
      <Text color="fg.muted" fontSize="sm">
        This pipeline has no parameters.
      </Text>
    );
  }
  return (
    <SimpleGrid columns={{ base: 1, lg: 2, xl: 3 }} gap={4}>
      {fields.map((field) => (
        <Field.Root invalid={field.parsed.error !== undefined} key={field.name}>
          <Field.Label htmlFor={`mlpipe-param-${field.name}`}>
            <HStack gap={2}>
              <Text as="span" fontFamily="mono">
                {field.name}
              </Text>
              <Badge size="xs" variant="outline">
                {typeLabel(field)}
              </Badge>
              {field.changed ? (
                <Badge colorPalette="info" size="xs">
                  changed
                </Badge>
              ) : undefined}
            </HStack>
          </Field.Label>
          <Control field={field} onChange={onChange} />
          {field.parsed.error === undefined ? (
            <Field.HelperText>
              {field.spec.description ?? ""}
              {field.spec.description ? " · " : ""}
              {field.spec.has_run_value ? "value in this run" : "default"}:{" "}
              {showValue(field.spec.has_run_value ? field.spec.run_value : field.spec.default)}
            </Field.HelperText>
          ) : (
            <Field.ErrorText data-testid={`param-error-${field.name}`}>{field.parsed.error}</Field.ErrorText>
          )}
        </Field.Root>
      ))}
    </SimpleGrid>
  );
};
